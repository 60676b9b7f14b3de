"""The shared OpenAI Responses transcripts (``shared/conformance/streams/openai_responses_*``)
accumulate to the result the openai SDK derived from them: I/O-free (the parser fed the
body in reads of several sizes) and end to end (replayed byte for byte by the test
server on ``/v1/responses`` in small writes, read by ``client.stream``)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

import llmfast
from llmfast import ChatAccumulator, ChatCompletionChunk, Client
from llmfast.backends._responses_stream import ResponsesStreamParser
from llmfast.backends.openai_responses import OpenAIResponsesBackend
from llmfast.errors import LLMFastError
from llmfast.testing import MockServer, Reply
from tests.conformance import conformance_dir, stream_cases

CASES = [name for name in stream_cases() if name.startswith("openai_responses_")]

pytestmark = pytest.mark.skipif(conformance_dir() is None, reason="../shared/conformance absent")


def _load(name: str) -> tuple[bytes, dict[str, Any]]:
    folder = conformance_dir()
    assert folder is not None
    body = (folder / "streams" / f"{name}.txt").read_bytes()
    expected = json.loads((folder / "streams" / f"{name}.expected.json").read_text("utf-8"))
    return body, expected


def _usage(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "prompt_tokens": usage["input_tokens"],
        "completion_tokens": usage["output_tokens"],
        "total_tokens": usage["total_tokens"],
        "prompt_tokens_details": usage["input_tokens_details"],
        "completion_tokens_details": usage["output_tokens_details"],
    }


def _check(
    chunks: list[ChatCompletionChunk], error: BaseException | None, expected: dict[str, Any]
) -> None:
    accumulator = ChatAccumulator()
    accumulator.extend(chunks)
    result = accumulator.result()
    if expected["error"] is None:
        assert error is None, error
    else:
        assert isinstance(error, llmfast.StreamEventError), error
        assert error.error == expected["error"]
        assert error.status == 429  # insufficient_quota
        assert chunks == []  # nothing reached the caller before the error
        assert expected["finish_reason"] == "failed"
        return
    assert result.id == expected["id"]
    assert result.model == expected["model"]
    assert result.text == expected["text"]
    assert result.message.reasoning_content == expected["reasoning"]
    assert result.message.refusal == expected["refusal"]
    calls = [
        {
            "id": call.id,
            "name": call.function.name,
            "arguments": json.loads(call.function.arguments),
            "arguments_raw": call.function.arguments,
        }
        for call in result.tool_calls
    ]
    assert calls == [
        {key: want[key] for key in ("id", "name", "arguments", "arguments_raw")}
        for want in expected["tool_calls"]
    ]
    assert expected["finish_reason"] == "completed"
    assert result.finish_reason == ("tool_calls" if calls else "stop")
    assert result.choices[0].provider_finish_reason == "completed"
    assert (msgspec.to_builtins(result.usage) if result.usage else None) == _usage(
        expected["usage"]
    )
    assert result.native is not None
    assert result.native["id"] == expected["id"]
    assert result.native["status"] == "completed"


def test_transcripts_are_present() -> None:
    assert len(CASES) == 3, CASES


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("read_size", [1, 7, 64, 1 << 20])
def test_offline(name: str, read_size: int) -> None:
    body, expected = _load(name)
    parser = ResponsesStreamParser()
    chunks: list[ChatCompletionChunk] = []
    error: LLMFastError | None = None
    try:
        for start in range(0, len(body), read_size):
            chunks += parser.feed(body[start : start + read_size])
            if parser.failure is not None:
                raise parser.failure
            if parser.done:
                break
        chunks += parser.close()
    except LLMFastError as exc:
        error = exc
    _check(chunks, error, expected)
    assert parser.last_sequence == expected["sse_events"] - 1 or error is not None


@pytest.mark.parametrize("name", CASES)
async def test_over_http(name: str) -> None:
    body, expected = _load(name)
    reply = Reply.raw(body, write_size=97, content_type="text/event-stream")
    async with (
        MockServer(default=reply) as server,
        Client(OpenAIResponsesBackend(server.url, api_key="k", model="m"), layers=[]) as client,
    ):
        stream = client.stream("replay")
        error: BaseException | None = None
        try:
            async with stream:
                async for _ in stream:
                    pass
        except LLMFastError as exc:
            error = exc
        assert client._pool.connections_in_use() == 0
    _check(stream.chunks, error, expected)
