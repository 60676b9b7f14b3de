"""Streaming agents on LLMFastModel: ``run_stream``, ``iter``, tool calls in a stream,
and a streamed result equal to the non-streamed one."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.messages import ModelResponse, PartDeltaEvent, TextPartDelta

from llmfast.testing import MockServer, Reply
from llmfast.testing.replies import split_tokens
from tests.integrations.test_pydantic_ai_support import (
    PROVIDERS,
    model_for,
    run_usage,
    server,
    shared_server,
)

__all__ = ["server", "shared_server"]  # the fixtures

TEXT = "The quick brown fox jumps over the lazy dog."


class Pet(BaseModel):
    name: str
    legs: int


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_text_deltas_arrive_in_order_and_equal_the_unstreamed_result(
    server: MockServer, provider: str
) -> None:
    async with model_for(server, provider) as model:
        agent = Agent(model)
        server.enqueue(Reply.text(TEXT), Reply.text(TEXT))
        whole = await agent.run("Say it.")
        async with agent.run_stream("Say it.") as streamed:
            deltas = [d async for d in streamed.stream_text(delta=True, debounce_by=None)]
        assert deltas == list(split_tokens(TEXT))  # one event per token, in order
        output = await streamed.get_output()
    assert output == whole.output == TEXT
    assert run_usage(streamed).input_tokens == run_usage(whole).input_tokens
    assert run_usage(streamed).output_tokens == run_usage(whole).output_tokens > 0
    assert server.requests[1].json["stream"] is True
    streamed_response = streamed.all_messages()[-1]
    assert isinstance(streamed_response, ModelResponse)
    assert streamed_response.finish_reason == "stop"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_streamed_tool_call_then_streamed_text(server: MockServer, provider: str) -> None:
    async with model_for(server, provider) as model:
        agent = Agent(model)

        @agent.tool_plain
        def legs(animal: str) -> int:
            return 4 if animal == "dog" else 2

        server.enqueue(
            Reply.tool_calls([{"name": "legs", "arguments": {"animal": "dog"}}]),
            Reply.text("A dog has 4 legs."),
        )
        async with agent.run_stream("How many legs has a dog?") as streamed:
            text = [t async for t in streamed.stream_text(delta=True, debounce_by=None)]
    assert "".join(text) == "A dog has 4 legs."
    assert run_usage(streamed).requests == 2
    assert server.requests[1].json["stream"] is True


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_streamed_structured_output(server: MockServer, provider: str) -> None:
    async with model_for(server, provider) as model:
        agent = Agent(model, output_type=Pet)
        server.enqueue(
            Reply.tool_calls([{"name": "final_result", "arguments": {"name": "Rex", "legs": 4}}])
        )
        async with agent.run_stream("A dog") as streamed:
            partials = [p async for p in streamed.stream_output(debounce_by=None)]
    assert partials[-1] == Pet(name="Rex", legs=4)


async def test_iter_streams_model_events(server: MockServer) -> None:
    async with model_for(server, "openai") as model:
        agent = Agent(model)
        server.enqueue(Reply.text("one two three"))
        deltas: list[str] = []
        async with agent.iter("Count") as run:
            async for node in run:
                if Agent.is_model_request_node(node):
                    async with node.stream(run.ctx) as events:
                        deltas.extend(
                            [
                                event.delta.content_delta
                                async for event in events
                                if isinstance(event, PartDeltaEvent)
                                and isinstance(event.delta, TextPartDelta)
                            ]
                        )
    assert run.result is not None
    assert run.result.output == "one two three"
    assert deltas == ["two ", "three"]  # the first token starts the part


async def test_a_stream_left_early_releases_the_connection(server: MockServer) -> None:
    async with model_for(server, "openai") as model:
        agent = Agent(model)
        server.enqueue(Reply.text(" ".join(["word"] * 500), token_delay=0.01))  # still live
        async with agent.run_stream("Talk") as streamed:
            async for _ in streamed.stream_text(delta=True, debounce_by=None):
                break
        await server.wait_open_connections(0)  # closed mid-body: not kept for reuse
    assert server.request_count == 1
