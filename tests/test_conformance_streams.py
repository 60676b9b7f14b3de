"""Real provider stream bodies (``shared/conformance/streams``) accumulate to the
provider's documented result.

Each OpenAI chat transcript is checked twice: I/O-free (SSE decoder, chunk decoder,
accumulator) and end to end, replayed byte for byte by the local test server in
small writes and read by ``client.stream``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from llmfast import ChatAccumulator, ChatCompletion, ChatCompletionChunk, Client, SSEDecoder
from llmfast.testing import MockServer, Reply
from tests.conformance import conformance_dir, stream_cases

CASES = stream_cases()
OPENAI_CHAT = [name for name in CASES if name.startswith("openai_chat_")]
# Backends still to come (issue 6 brings Anthropic, Ollama and Gemini); each of these
# transcripts is run as soon as its backend exists.
NOT_YET = {
    "anthropic_": "Anthropic Messages backend not built yet (issue 6)",
    "ollama_": "Ollama native backend not built yet (issue 6)",
    "gemini_": "Gemini backend not built yet (issue 6)",
    "openai_responses_": "OpenAI Responses API backend not built yet",
}

pytestmark = pytest.mark.skipif(conformance_dir() is None, reason="../shared/conformance absent")

_decode_chunk = msgspec.json.Decoder(ChatCompletionChunk).decode


def _load(name: str) -> tuple[bytes, dict[str, Any]]:
    folder = conformance_dir()
    assert folder is not None
    body = (folder / "streams" / f"{name}.txt").read_bytes()
    expected = json.loads((folder / "streams" / f"{name}.expected.json").read_text("utf-8"))
    return body, expected


def _accumulate_offline(body: bytes, read_size: int) -> ChatCompletion:
    decoder = SSEDecoder()
    accumulator = ChatAccumulator()
    done = False
    for start in range(0, len(body), read_size):
        for event in decoder.feed(body[start : start + read_size]):
            if event.data == "[DONE]":
                done = True
            elif not done:
                accumulator.add(_decode_chunk(event.data))
    decoder.close()
    assert done, "the transcript ends with [DONE]"
    return accumulator.result()


def _tool_calls(message_tool_calls: Any) -> list[dict[str, Any]]:
    out = []
    for call in message_tool_calls or []:
        raw = call.function.arguments
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        out.append(
            {"id": call.id, "name": call.function.name, "arguments": parsed, "arguments_raw": raw}
        )
    return out


def _check(result: ChatCompletion, expected: dict[str, Any]) -> None:
    # The SDK-derived expectation keeps the first chunk's id and model even when they
    # are "" (an Azure prompt-filter chunk); llmfast keeps the first non-empty ones.
    for field in ("id", "model"):
        if expected[field]:
            assert getattr(result, field) == expected[field]
        else:
            assert getattr(result, field), f"the real {field} was kept"
    assert result.text == expected["text"]
    assert result.message.refusal == expected["refusal"]
    assert _tool_calls(result.message.tool_calls) == expected["tool_calls"]
    assert result.finish_reason == expected["finish_reason"]
    usage = msgspec.to_builtins(result.usage) if result.usage else None
    assert usage == expected["usage"]
    assert len(result.choices) == len(expected["choices"])
    for choice, want in zip(result.choices, expected["choices"], strict=True):
        assert choice.index == want["index"]
        assert choice.message.content == want["text"]
        assert choice.message.refusal == want["refusal"]
        assert _tool_calls(choice.message.tool_calls) == want["tool_calls"]
        assert choice.finish_reason == want["finish_reason"]
        if want.get("logprobs") is not None:
            assert choice.logprobs is not None
            got = [{"token": t.token, "logprob": t.logprob} for t in choice.logprobs.content or []]
            assert got == [
                {"token": t["token"], "logprob": t["logprob"]} for t in want["logprobs"]["content"]
            ]


def test_transcripts_are_present() -> None:
    assert len(OPENAI_CHAT) >= 9, CASES


@pytest.mark.parametrize("name", OPENAI_CHAT)
@pytest.mark.parametrize("read_size", [1, 7, 64, 1 << 20])
def test_openai_chat_offline(name: str, read_size: int) -> None:
    body, expected = _load(name)
    _check(_accumulate_offline(body, read_size), expected)


@pytest.mark.parametrize("name", OPENAI_CHAT)
async def test_openai_chat_over_http(name: str) -> None:
    body, expected = _load(name)
    async with (
        MockServer(default=Reply.raw(body, write_size=97)) as server,
        Client(base_url=server.url, model="m") as client,
    ):
        async with client.stream("replay") as stream:
            async for _ in stream:
                pass
        _check(stream.completion, expected)


@pytest.mark.parametrize("name", [n for n in CASES if not n.startswith("openai_chat_")])
def test_other_providers(name: str) -> None:
    reason = next((why for prefix, why in NOT_YET.items() if name.startswith(prefix)), None)
    if reason is not None:
        pytest.skip(reason)
    pytest.fail(f"no test is wired up for transcript {name}")


def test_conformance_folder_is_outside_the_project() -> None:
    folder = conformance_dir()
    assert folder is not None
    assert Path(__file__).resolve().parents[1] not in folder.resolve().parents
