"""Structured calls over real HTTP, on all four backends: each mode, re-asking with
summed usage, refusal and truncation."""

from __future__ import annotations

import json

import msgspec
import pytest

from llmfast.errors import OutputRefusedError, OutputTruncatedError, OutputValidationError
from llmfast.structured import output_spec
from llmfast.structured.call import first_json_value, structured_chat
from llmfast.testing import MockServer, Reply
from tests.structured.clients import PROVIDERS, client_for


class Line(msgspec.Struct):
    item: str
    qty: int = 1


class Invoice(msgspec.Struct):
    number: int
    lines: list[Line]
    note: str | None = None


GOOD = {"number": 7, "lines": [{"item": "tea", "qty": 2}, {"item": "cake", "qty": None}]}
EXPECTED = Invoice(7, [Line("tea", 2), Line("cake", 1)])


def reply_with(provider: str, value: object, mode: str | None = None) -> Reply:
    text = value if isinstance(value, str) else json.dumps(value)
    if (mode or ("tool" if provider == "anthropic" else "native")) == "tool":
        return Reply.tool_calls([{"name": "Invoice", "arguments": text}])
    return Reply.text(text)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_typed_reply_on_every_backend(server: MockServer, provider: str) -> None:
    server.enqueue(reply_with(provider, GOOD))
    async with client_for(server, provider) as client:
        reply = await structured_chat(client, "bill me", output_spec(Invoice))
    assert reply.output == EXPECTED
    assert reply.attempts == 1
    assert reply.usage is not None
    assert reply.usage.total_tokens > 0
    body = server.requests[0].json
    if provider == "openai":
        fmt = body["response_format"]
        assert fmt["type"] == "json_schema"
        assert fmt["json_schema"]["strict"] is True
        assert fmt["json_schema"]["schema"]["required"] == ["number", "lines", "note"]
    elif provider == "anthropic":
        assert body["tool_choice"] == {"type": "tool", "name": "Invoice"}
        assert body["tools"][0]["input_schema"]["properties"]["number"] == {"type": "integer"}
    elif provider == "ollama":
        assert body["format"]["properties"]["number"] == {"type": "integer"}
    else:
        assert body["generationConfig"]["responseMimeType"] == "application/json"
        assert "responseJsonSchema" in body["generationConfig"]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("mode", ["tool", "prompted"])
async def test_every_mode_can_be_forced(server: MockServer, provider: str, mode: str) -> None:
    if mode == "prompted":
        server.enqueue(Reply.text(f"Sure! Here it is:\n```json\n{json.dumps(GOOD)}\n```"))
    else:
        server.enqueue(reply_with(provider, GOOD, mode))
    async with client_for(server, provider) as client:
        reply = await structured_chat(client, "bill me", output_spec(Invoice), mode=mode)  # type: ignore[arg-type]
    assert reply.output == EXPECTED
    body = json.dumps(server.requests[0].json)
    if mode == "prompted":
        assert "matches this JSON Schema" in body
        assert "response_format" not in body


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_invalid_reply_is_reasked_with_its_error_and_usage_is_summed(
    server: MockServer, provider: str
) -> None:
    server.enqueue(
        Reply.text("hello"),
        reply_with(provider, {"number": "seven", "lines": []}),
        reply_with(provider, GOOD),
    )
    async with client_for(server, provider) as client:
        first = await client.chat("warm-up")  # the usage one attempt reports
        reply = await structured_chat(client, "bill me", output_spec(Invoice))
    assert reply.output == EXPECTED
    assert reply.attempts == 2
    assert server.request_count == 3
    reask = json.dumps(server.requests[2].json)
    assert "Expected `int`, got `str`" in reask
    assert "$.number" in reask
    assert reply.usage is not None
    assert first.usage is not None
    assert reply.usage.completion_tokens > first.usage.completion_tokens or provider == "gemini"
    assert reply.usage.prompt_tokens > 0


async def test_attempts_run_out_in_a_typed_error_with_every_attempt() -> None:
    async with MockServer() as server, client_for(server, "openai") as client:
        server.enqueue(Reply.text("not json"), Reply.text('{"number": 1}'), Reply.text("[]"))
        with pytest.raises(OutputValidationError) as info:
            await structured_chat(client, "bill me", output_spec(Invoice), max_attempts=3)
    attempts = info.value.attempts
    assert [a.text for a in attempts] == ["not json", '{"number": 1}', "[]"]
    assert "not valid JSON" in attempts[0].error
    assert "missing required field `lines`" in attempts[1].error
    assert info.value.usage is not None
    assert info.value.usage.total_tokens >= 3


async def test_a_token_budget_stops_reasking() -> None:
    async with MockServer() as server, client_for(server, "openai") as client:
        server.enqueue(Reply.text("nope"), Reply.text(json.dumps(GOOD)))
        with pytest.raises(OutputValidationError):
            await structured_chat(client, "x", output_spec(Invoice), max_total_tokens=1)
        assert server.request_count == 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_truncation_is_reported_as_such(server: MockServer, provider: str) -> None:
    server.enqueue(Reply.text('{"number": 7, "lines": [{"it', finish_reason="length"))
    async with client_for(server, provider) as client:
        with pytest.raises(OutputTruncatedError):
            await structured_chat(client, "x", output_spec(Invoice), mode="native")
    assert server.request_count == 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_refusal_is_a_typed_error(server: MockServer, provider: str) -> None:
    # Tool mode: answering without calling the tool is how Anthropic declines.
    server.enqueue(Reply.text("I can't help with that."))
    async with client_for(server, provider) as client:
        with pytest.raises(OutputRefusedError) as info:
            await structured_chat(client, "x", output_spec(Invoice), mode="tool")
    assert info.value.refusal == "I can't help with that."


async def test_openai_refusal_field() -> None:
    body = {
        "id": "c1",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "refusal": "No."},
                "finish_reason": "stop",
            }
        ],
    }
    async with MockServer() as server, client_for(server, "openai") as client:
        server.enqueue(Reply.raw(json.dumps(body).encode(), content_type="application/json"))
        with pytest.raises(OutputRefusedError, match=r"No\."):
            await structured_chat(client, "x", output_spec(Invoice))


async def test_non_object_outputs_are_wrapped_and_unwrapped() -> None:
    async with MockServer() as server, client_for(server, "openai") as client:
        server.enqueue(Reply.text('{"value": [{"item": "a"}, {"item": "b", "qty": 3}]}'))
        reply = await structured_chat(client, "x", output_spec(list[Line]))
    assert reply.output == [Line("a"), Line("b", 3)]
    schema = server.requests[0].json["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["value"]


def test_first_json_value_skips_prose_and_fences() -> None:
    assert (
        first_json_value('ok {"a": [1, {"b": "}"}]} trailing {"c": 1}') == '{"a": [1, {"b": "}"}]}'
    )
    assert first_json_value("nothing here") == "nothing here"
    assert first_json_value("{broken [1, 2]") == "[1, 2]"


async def test_pydantic_models_are_output_types_too() -> None:
    pydantic = pytest.importorskip("pydantic")

    class PLine(pydantic.BaseModel):  # type: ignore[name-defined,misc]
        item: str
        qty: int = 1

    class PInvoice(pydantic.BaseModel):  # type: ignore[name-defined,misc]
        number: int
        lines: list[PLine]

    spec = output_spec(PInvoice)
    assert spec.strict.strict
    async with MockServer() as server, client_for(server, "openai") as client:
        server.enqueue(Reply.text('{"number": 7, "lines": [{"item": "tea", "qty": null}]}'))
        reply = await structured_chat(client, "x", spec)
        server.enqueue(Reply.text('{"number": "x", "lines": []}'), Reply.text("{}"))
        with pytest.raises(OutputValidationError) as info:
            await structured_chat(client, "x", spec, max_attempts=2)
    assert reply.output == PInvoice(number=7, lines=[PLine(item="tea", qty=1)])
    assert "number" in info.value.attempts[0].error
