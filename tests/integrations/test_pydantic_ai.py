"""pydantic-ai agents on LLMFastModel: tools, structured output, usage, settings,
content, over the OpenAI-compatible and Anthropic formats of ``llmfast.testing``."""

from __future__ import annotations

import base64

import pytest
from pydantic import BaseModel
from pydantic_ai import Agent, BinaryContent, ImageUrl, NativeOutput, PromptedOutput
from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import ModelResponse, ThinkingPart
from pydantic_ai.settings import ModelSettings

import llmfast
from llmfast.integrations.pydantic_ai import LLMFastModel
from llmfast.testing import MockServer, Reply
from tests.integrations.test_pydantic_ai_support import (
    PROVIDERS,
    anthropic_body,
    model_for,
    openai_body,
    run_usage,
    server,
    shared_server,
)

__all__ = ["server", "shared_server"]  # the fixtures


class City(BaseModel):
    name: str
    population: int


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_tool_call_then_the_final_text(server: MockServer, provider: str) -> None:
    seen: list[str] = []
    async with model_for(server, provider) as model:
        agent = Agent(model, instructions="Answer briefly.")

        @agent.tool_plain
        def weather(city: str) -> str:
            """The weather in a city."""
            seen.append(city)
            return f"sunny in {city}"

        server.enqueue(
            Reply.tool_calls([{"name": "weather", "arguments": {"city": "Paris"}}]),
            Reply.text("It is sunny in Paris."),
        )
        result = await agent.run("What is the weather in Paris?")
    assert result.output == "It is sunny in Paris."
    assert seen == ["Paris"]
    first, second = (r.json for r in server.requests)
    tools = first["tools"]
    if provider == "openai":
        assert first["messages"][0] == {"role": "system", "content": "Answer briefly."}
        assert tools[0]["function"]["name"] == "weather"
        assert tools[0]["function"]["description"] == "The weather in a city."
        assert second["messages"][-1]["role"] == "tool"
        assert second["messages"][-1]["content"] == "sunny in Paris"
    else:
        assert first["system"] == "Answer briefly."
        assert tools[0]["name"] == "weather"
        result_block = second["messages"][-1]["content"][0]
        assert result_block["type"] == "tool_result"
        assert result_block["content"] == "sunny in Paris"
    assert run_usage(result).requests == 2
    assert run_usage(result).tool_calls == 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_structured_output_through_the_output_tool(server: MockServer, provider: str) -> None:
    async with model_for(server, provider) as model:
        agent = Agent(model, output_type=City)
        server.enqueue(
            Reply.tool_calls(
                [{"name": "final_result", "arguments": {"name": "Paris", "population": 2_100_000}}]
            )
        )
        result = await agent.run("The largest city of France?")
    assert result.output == City(name="Paris", population=2_100_000)
    body = server.requests[0].json
    # one output tool and no text allowed: forced by name, which every server honours
    if provider == "openai":
        assert body["tool_choice"] == {"type": "function", "function": {"name": "final_result"}}
    else:
        assert body["tool_choice"] == {"type": "tool", "name": "final_result"}


async def test_a_tool_then_a_structured_output(server: MockServer) -> None:
    async with model_for(server, "openai") as model:
        agent = Agent(model, output_type=City)

        @agent.tool_plain
        def population(city: str) -> int:
            return 2_100_000

        server.enqueue(
            Reply.tool_calls([{"name": "population", "arguments": {"city": "Paris"}}]),
            Reply.tool_calls(
                [{"name": "final_result", "arguments": {"name": "Paris", "population": 2_100_000}}]
            ),
        )
        result = await agent.run("Paris?")
    assert result.output.population == 2_100_000
    assert server.requests[0].json["tool_choice"] == "required"  # a tool or the output tool


async def test_native_output_is_the_json_schema_response_format(server: MockServer) -> None:
    async with model_for(server, "openai") as model:
        agent = Agent(model, output_type=NativeOutput(City))
        result = await agent.run("A city")  # the test server answers with a valid value
    assert isinstance(result.output, City)
    response_format = server.requests[0].json["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["schema"]["properties"].keys() == {"name", "population"}
    assert "tools" not in server.requests[0].json


async def test_native_output_is_refused_where_the_backend_has_none(server: MockServer) -> None:
    async with model_for(server, "anthropic") as model:
        agent = Agent(model, output_type=NativeOutput(City))
        with pytest.raises(UserError, match="Native structured output is not supported"):
            await agent.run("A city")
    assert server.request_count == 0


async def test_prompted_output_asks_for_a_json_object(server: MockServer) -> None:
    async with model_for(server, "openai") as model:
        agent = Agent(model, output_type=PromptedOutput(City))
        server.enqueue(Reply.text('{"name": "Lyon", "population": 520000}'))
        result = await agent.run("A city")
    assert result.output == City(name="Lyon", population=520_000)
    body = server.requests[0].json
    assert body["response_format"] == {"type": "json_object"}
    assert "population" in body["messages"][0]["content"]  # the schema is in the instructions


async def test_usage_details_are_what_the_openai_server_reported(server: MockServer) -> None:
    usage = {
        "prompt_tokens": 120,
        "completion_tokens": 30,
        "total_tokens": 150,
        "prompt_tokens_details": {"cached_tokens": 100, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 12,
            "accepted_prediction_tokens": 3,
        },
    }
    async with model_for(server, "openai") as model:
        agent = Agent(model)

        @agent.tool_plain
        def lookup() -> str:
            return "found"

        server.enqueue(
            openai_body(None, usage, calls=[{"name": "lookup", "arguments": "{}"}]),
            openai_body("done", usage),
        )
        result = await agent.run("go")
    run = run_usage(result)
    assert (run.requests, run.input_tokens, run.output_tokens) == (2, 240, 60)
    assert run.cache_read_tokens == 200
    if hasattr(run, "output_reasoning_tokens"):
        assert run.output_reasoning_tokens == 24
        assert run.details == {"accepted_prediction_tokens": 6}
    else:  # older pydantic-ai: no field of its own
        assert run.details == {"reasoning_tokens": 24, "accepted_prediction_tokens": 6}
    last = result.all_messages()[-1]
    assert isinstance(last, ModelResponse)
    assert getattr(last.usage, "output_reasoning_tokens", 12) == 12
    assert last.provider_response_id == "chatcmpl-raw"


async def test_usage_with_cache_writes_is_what_the_anthropic_server_reported(
    server: MockServer,
) -> None:
    usage = {
        "input_tokens": 10,
        "cache_read_input_tokens": 500,
        "cache_creation_input_tokens": 40,
        "output_tokens": 7,
    }
    async with model_for(server, "anthropic") as model:
        server.enqueue(anthropic_body("hi", usage))
        result = await Agent(model).run("hello")
    run = run_usage(result)
    assert (run.input_tokens, run.output_tokens) == (550, 7)  # input includes the cache
    assert (run.cache_read_tokens, run.cache_write_tokens) == (500, 40)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_model_settings_reach_the_wire(server: MockServer, provider: str) -> None:
    settings = ModelSettings(
        temperature=0.25,
        top_p=0.5,
        max_tokens=77,
        stop_sequences=["END"],
        seed=7,
        parallel_tool_calls=False,
        extra_headers={"x-trace": "abc"},
        timeout=30,
    )
    async with model_for(server, provider) as model:
        agent = Agent(model)

        @agent.tool_plain
        def noop() -> str:
            return ""

        await agent.run("hi", model_settings=settings)
    recorded = server.requests[0]
    body = recorded.json
    assert recorded.headers["x-trace"] == "abc"
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.25, 0.5, 77)
    if provider == "openai":
        assert (body["stop"], body["seed"], body["parallel_tool_calls"]) == (["END"], 7, False)
    else:
        assert body["stop_sequences"] == ["END"]
        assert body["tool_choice"]["disable_parallel_tool_use"] is True
        assert "seed" not in body  # the Messages API has none: not sent, not an error


async def test_identity_and_a_masked_base_url(server: MockServer) -> None:
    url = server.url.replace("http://", "http://user:hunter2@")
    async with llmfast.Client(base_url=url, model="m1") as client:
        model = LLMFastModel(client)
        assert (model.model_name, model.system) == ("m1", "openai")
        assert model.base_url is not None
        assert "hunter2" not in model.base_url
        assert LLMFastModel(client, "m2").model_name == "m2"
        result = await Agent(model).run("hi")
    response = result.all_messages()[-1]
    assert isinstance(response, ModelResponse)
    assert response.provider_name == "openai"
    assert response.provider_url == model.base_url
    assert "hunter2" not in repr(response)
    assert server.requests[0].headers["authorization"].startswith("Basic ")


async def test_a_model_name_is_required(server: MockServer) -> None:
    async with llmfast.Client(base_url=server.url, api_key="k") as client:
        with pytest.raises(llmfast.errors.ConfigurationError, match="model"):
            LLMFastModel(client)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_images_by_url_and_inline(server: MockServer, provider: str) -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    async with model_for(server, provider) as model:
        await Agent(model).run(
            [
                "Compare",
                ImageUrl(url="https://example.com/a.png"),
                BinaryContent(data=png, media_type="image/png"),
            ]
        )
    content = server.requests[0].json["messages"][-1]["content"]
    inline = base64.b64encode(png).decode()
    if provider == "openai":
        assert content[1] == {
            "type": "image_url",
            "image_url": {"url": "https://example.com/a.png"},
        }
        assert content[2]["image_url"]["url"] == f"data:image/png;base64,{inline}"
    else:
        assert content[1]["source"] == {"type": "url", "url": "https://example.com/a.png"}
        assert content[2]["source"]["data"] == inline


async def test_content_llmfast_cannot_send_is_refused(server: MockServer) -> None:
    async with model_for(server, "openai") as model:
        with pytest.raises(UserError, match="audio/wav"):
            await Agent(model).run(["Hear", BinaryContent(data=b"RIFF", media_type="audio/wav")])
    assert server.request_count == 0


async def test_reasoning_becomes_a_thinking_part(server: MockServer) -> None:
    async with model_for(server, "anthropic") as model:
        server.enqueue(Reply.text("42", reasoning="Six times seven."))
        result = await Agent(model).run("The answer?")
    response = result.all_messages()[-1]
    assert isinstance(response, ModelResponse)
    thinking = response.parts[0]
    assert isinstance(thinking, ThinkingPart)
    assert thinking.content == "Six times seven."
    assert result.output == "42"
    assert response.finish_reason == "stop"


def test_run_sync(llm_server: MockServer) -> None:
    client = llmfast.Client(base_url=llm_server.url, api_key="k", model="mock-model", layers=[])
    agent = Agent(LLMFastModel(client))
    llm_server.enqueue(Reply.text("first"), Reply.text("second"))
    assert agent.run_sync("a").output == "first"
    assert agent.run_sync("b").output == "second"
    import asyncio

    asyncio.get_event_loop().run_until_complete(client.aclose())


@pytest.mark.parametrize("provider", ["gemini", "ollama"])
async def test_the_other_backends_run_tools_outputs_and_streams(
    server: MockServer, provider: str
) -> None:
    async with model_for(server, provider) as model:
        agent = Agent(model)

        @agent.tool_plain
        def weather(city: str) -> str:
            return f"sunny in {city}"

        server.enqueue(
            Reply.tool_calls([{"name": "weather", "arguments": {"city": "Oslo"}}]),
            Reply.text("Sunny."),
        )
        async with agent.run_stream("Weather in Oslo?") as streamed:
            assert await streamed.get_output() == "Sunny."
        assert run_usage(streamed).tool_calls == 1
        # the default output mode: a forced output tool (Gemini), the JSON schema (Ollama)
        city = (await Agent(model, output_type=City).run("A city")).output
        native = (await Agent(model, output_type=NativeOutput(City)).run("A city")).output
    assert isinstance(city, City)
    assert isinstance(native, City)
    structured = server.requests[-2].json
    if provider == "ollama":
        assert "tool_choice" not in structured  # Ollama has none
        assert structured["format"]["properties"].keys() == {"name", "population"}
    else:
        assert structured["toolConfig"]["functionCallingConfig"]["allowedFunctionNames"] == [
            "final_result"
        ]
