"""Tests of `llmfast.testing.MockServer`: real HTTP on loopback, raw aiohttp as the client."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import struct
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import llmfast.testing
from llmfast.testing import MockServer, RecordedRequest, Reply

USER = {"role": "user", "content": "Hello there, mock!"}
CHAT: dict[str, Any] = {"model": "gpt-test", "messages": [USER]}
REPO_ROOT = Path(llmfast.testing.__file__).resolve().parents[2]


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with MockServer() as srv:
        yield srv


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as sess:
        yield sess


async def post(
    session: aiohttp.ClientSession, url: str, body: Any = CHAT
) -> tuple[int, dict[str, str], Any]:
    """POST JSON; return status, headers (lower-cased names) and the decoded JSON body."""
    async with session.post(url, json=body) as resp:
        headers = {k.lower(): v for k, v in resp.headers.items()}
        return resp.status, headers, await resp.json(content_type=None)


async def sse(session: aiohttp.ClientSession, url: str, body: Any = CHAT) -> list[str]:
    """Stream a chat completion; check the framing and return each event's data."""
    async with session.post(f"{url}/chat/completions", json={**body, "stream": True}) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/event-stream"
        raw = (await resp.read()).decode()
    assert raw.endswith("\n\n")
    blocks = raw[:-2].split("\n\n")
    assert all(b.startswith("data: ") and "\n" not in b for b in blocks), raw
    return [b.removeprefix("data: ") for b in blocks]


def chunks(events: list[str]) -> list[dict[str, Any]]:
    """The decoded chunk events (all but `[DONE]`)."""
    return [json.loads(e) for e in events if e != "[DONE]"]


def content(events: list[str], index: int = 0) -> str:
    return "".join(
        choice["delta"].get("content") or ""
        for chunk in chunks(events)
        for choice in chunk["choices"]
        if choice["index"] == index
    )


# -- chat completions ----------------------------------------------------------------


async def test_text_reply_has_openai_shape(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    server.enqueue(Reply.text("Hi, how are you?"))
    status, headers, body = await post(session, f"{server.url}/chat/completions")
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    assert headers["x-request-id"] == "req_1"
    assert body["id"] == "chatcmpl-mock1"
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "gpt-test"
    assert body["system_fingerprint"]
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hi, how are you?", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


async def test_echo_uses_last_user_message(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    parts = [
        {"type": "text", "text": "look "},
        {"type": "image_url", "image_url": {"url": "data:,"}},
        {"type": "text", "text": "here"},
    ]
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": parts},
    ]
    _, _, body = await post(session, f"{server.url}/chat/completions", {"messages": messages})
    assert body["choices"][0]["message"]["content"] == "look here"
    assert body["model"] == "mock-model"
    _, _, body = await post(session, f"{server.url}/chat/completions")
    assert body["choices"][0]["message"]["content"] == USER["content"]


@pytest.mark.parametrize("include_usage", [False, True])
async def test_stream_framing(
    server: MockServer, session: aiohttp.ClientSession, include_usage: bool
) -> None:
    text = "The quick  brown fox."
    server.enqueue(Reply.text(text, finish_reason="length"))
    body = {**CHAT, "stream_options": {"include_usage": include_usage}}
    events = await sse(session, server.url, body)
    assert events[-1] == "[DONE]"
    decoded = chunks(events)
    assert all(c["id"] == "chatcmpl-mock1" for c in decoded)
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "gpt-test" for c in decoded)
    first = decoded[0]["choices"][0]
    assert first["delta"] == {"role": "assistant", "content": ""}
    pieces = [c["choices"][0]["delta"]["content"] for c in decoded[1:4]]
    assert pieces == ["The ", "quick  ", "brown "]
    assert content(events) == text
    finish = decoded[5] if include_usage else decoded[-1]
    assert finish["choices"] == [
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "length"}
    ]
    if include_usage:
        assert len(decoded) == 7
        assert decoded[-1]["choices"] == []
        assert decoded[-1]["usage"] == {
            "prompt_tokens": 3,
            "completion_tokens": 4,
            "total_tokens": 7,
        }
    else:
        assert len(decoded) == 6
        assert all("usage" not in c for c in decoded)


async def test_stream_chunk_size_and_token_delay(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    server.enqueue(Reply.text("abcdefgh", chunk_size=3, token_delay=0.001))
    events = await sse(session, server.url)
    pieces = [c["choices"][0]["delta"].get("content") for c in chunks(events)[1:-1]]
    assert pieces == ["abc", "def", "gh"]
    tricky = 'He said "hi"\\n\tthen \u00e9 \U0001f600 left\r\n  '
    server.enqueue(Reply.text(tricky, token_delay=0.001))
    assert content(await sse(session, server.url)) == tricky


async def test_n_choices(server: MockServer, session: aiohttp.ClientSession) -> None:
    server.enqueue(Reply.text("one two"), Reply.text("one two"))
    _, _, body = await post(session, f"{server.url}/chat/completions", {**CHAT, "n": 2})
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert {c["message"]["content"] for c in body["choices"]} == {"one two"}
    assert body["usage"]["completion_tokens"] == 4
    events = await sse(session, server.url, {**CHAT, "n": 2})
    indices = [c["choices"][0]["index"] for c in chunks(events)]
    assert indices == [0, 1] * 4  # role, "one ", "two", finish: interleaved
    assert content(events, 0) == content(events, 1) == "one two"


async def test_invalid_n_is_400(server: MockServer, session: aiohttp.ClientSession) -> None:
    status, _, body = await post(session, f"{server.url}/chat/completions", {**CHAT, "n": 0})
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"


CALLS = [
    {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}, "id": "call_w"},
    {"name": "search", "arguments": {"query": "mock servers", "limit": 10}},
]


async def test_tool_calls(server: MockServer, session: aiohttp.ClientSession) -> None:
    server.enqueue(Reply.tool_calls(CALLS))
    _, _, body = await post(session, f"{server.url}/chat/completions")
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] is None
    assert [c["id"] for c in message["tool_calls"]] == ["call_w", "call_1"]
    assert all(c["type"] == "function" for c in message["tool_calls"])
    functions = [c["function"] for c in message["tool_calls"]]
    assert [f["name"] for f in functions] == ["get_weather", "search"]
    assert [json.loads(f["arguments"]) for f in functions] == [c["arguments"] for c in CALLS]


async def test_tool_calls_stream_interleaves_fragments(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    server.enqueue(Reply.tool_calls(CALLS, text="Let me check."))
    decoded = chunks(await sse(session, server.url))
    assert decoded[-1]["choices"][0]["finish_reason"] == "tool_calls"
    deltas = [c["choices"][0]["delta"] for c in decoded]
    assert "".join(d.get("content") or "" for d in deltas) == "Let me check."
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    intros = [c for c in calls if "id" in c]
    assert intros == [
        {
            "index": k,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        for k, (call_id, name) in enumerate([("call_w", "get_weather"), ("call_1", "search")])
    ]
    fragments = [c for c in calls if "id" not in c]
    assert all(3 <= len(f["function"]["arguments"]) <= 8 for f in fragments[:4])
    assert [f["index"] for f in fragments[:4]] == [0, 1, 0, 1]
    for k, call in enumerate(CALLS):
        joined = "".join(f["function"]["arguments"] for f in fragments if f["index"] == k)
        assert json.loads(joined) == call["arguments"]


# -- faults ----------------------------------------------------------------------------


async def test_error_reply(server: MockServer, session: aiohttp.ClientSession) -> None:
    server.enqueue(
        Reply.error(429, message="slow down", code="rate_limit_exceeded", retry_after=2.0),
        Reply.error(503, retry_after_ms=1500, headers={"x-extra": "yes"}),
    )
    status, headers, body = await post(session, f"{server.url}/chat/completions")
    assert status == 429
    assert headers["retry-after"] == "2"
    assert body == {
        "error": {
            "message": "slow down",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    status, headers, body = await post(
        session, f"{server.url}/chat/completions", {**CHAT, "stream": True}
    )
    assert status == 503
    assert headers["retry-after-ms"] == "1500"
    assert headers["x-extra"] == "yes"
    assert "retry-after" not in headers
    assert body["error"]["type"] == "server_error"


async def test_reset_before_any_byte(server: MockServer, session: aiohttp.ClientSession) -> None:
    server.enqueue(Reply.reset())
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(session, f"{server.url}/chat/completions")


async def test_reset_mid_stream(server: MockServer, session: aiohttp.ClientSession) -> None:
    server.enqueue(Reply.reset(after_chunks=2))
    lines: list[bytes] = []

    async def read_lines(resp: aiohttp.ClientResponse) -> None:
        async for line in resp.content:
            lines.append(line)  # noqa: PERF401  # keep what arrived before the reset

    url = f"{server.url}/chat/completions"
    async with session.post(url, json={**CHAT, "stream": True}) as resp:
        assert resp.status == 200
        with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ClientConnectionError)):
            await read_lines(resp)
    events = [line for line in lines if line.startswith(b"data: ")]
    assert len(events) == 2
    assert b"[DONE]" not in b"".join(lines)


async def test_reset_mid_body(server: MockServer, session: aiohttp.ClientSession) -> None:
    server.enqueue(Reply.reset(after_chunks=1))
    with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ClientConnectionError)):
        await post(session, f"{server.url}/chat/completions")


async def test_stall_times_out_client_and_close_is_prompt(
    session: aiohttp.ClientSession,
) -> None:
    server = MockServer()
    await server.start()
    try:
        server.enqueue(
            Reply.stall(),
            Reply.stall(after_chunks=2),
            Reply.stall(after_chunks=1),
            Reply.text("slow tokens here", token_delay=60),
        )
        url = f"{server.url}/chat/completions"
        with pytest.raises(asyncio.TimeoutError):
            async with session.post(url, json=CHAT, timeout=aiohttp.ClientTimeout(total=0.05)):
                pass
        in_flight = [
            asyncio.create_task(sse(session, server.url)),
            asyncio.create_task(post(session, url)),
            asyncio.create_task(sse(session, server.url)),
        ]
        await server.wait_for_requests(4)
    finally:
        started = time.monotonic()
        await server.close()
        assert time.monotonic() - started < 0.5
    for task in in_flight:
        with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ClientConnectionError)):
            await task
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_malformed(server: MockServer, session: aiohttp.ClientSession) -> None:
    server.enqueue(Reply.malformed(), Reply.malformed(after_chunks=1))
    async with session.post(f"{server.url}/chat/completions", json=CHAT) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        text = await resp.text()
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    events = await sse(session, server.url)
    assert events[1] == "{not json}"
    assert json.loads(events[0])["choices"][0]["delta"]["role"] == "assistant"
    assert events[-1] == "[DONE]"
    assert content(events[:1] + events[2:]) == USER["content"]


async def test_truncated(server: MockServer, session: aiohttp.ClientSession) -> None:
    server.enqueue(Reply.truncated(), Reply.truncated(after_chunks=2))
    async with session.post(f"{server.url}/chat/completions", json=CHAT) as resp:
        assert resp.status == 200
        text = await resp.text()
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    assert text.startswith('{"id":"chatcmpl-mock1"')
    events = await sse(session, server.url)
    assert len(events) == 2
    assert "[DONE]" not in events
    assert content(events) == "Hello "


async def test_stream_error(server: MockServer, session: aiohttp.ClientSession) -> None:
    error = {"message": "model overloaded", "type": "overloaded_error", "code": None}
    server.enqueue(Reply.stream_error(error, after_chunks=2), Reply.stream_error(error))
    events = await sse(session, server.url)
    assert len(events) == 3
    assert json.loads(events[-1]) == {"error": error}
    status, _, body = await post(session, f"{server.url}/chat/completions")
    assert status == 500
    assert body["error"]["message"] == "model overloaded"


# -- embeddings, models, errors --------------------------------------------------------


async def test_embeddings(server: MockServer, session: aiohttp.ClientSession) -> None:
    url = f"{server.url}/embeddings"
    _, headers, first = await post(session, url, {"model": "emb", "input": ["a b", "c"]})
    _, _, again = await post(session, url, {"model": "emb", "input": ["a b", "c"]})
    assert headers["x-request-id"] == "req_1"
    assert first["object"] == "list"
    assert first["model"] == "emb"
    assert first["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    vectors = [d["embedding"] for d in first["data"]]
    assert [d["index"] for d in first["data"]] == [0, 1]
    assert all(d["object"] == "embedding" for d in first["data"])
    assert [len(v) for v in vectors] == [8, 8]
    assert vectors[0] != vectors[1]
    assert [d["embedding"] for d in again["data"]] == vectors
    assert sum(x * x for x in vectors[0]) == pytest.approx(1.0)

    _, _, single = await post(session, url, {"input": "a b", "dimensions": 5})
    assert len(single["data"]) == 1
    assert len(single["data"][0]["embedding"]) == 5

    _, _, b64 = await post(session, url, {"input": "c", "encoding_format": "base64"})
    packed = base64.b64decode(b64["data"][0]["embedding"])
    assert struct.unpack("<8f", packed) == pytest.approx(vectors[1], abs=1e-6)


async def test_embedding_faults(server: MockServer, session: aiohttp.ClientSession) -> None:
    url = f"{server.url}/embeddings"
    server.enqueue(Reply.error(503), Reply.malformed(), Reply.reset())
    status, _, _ = await post(session, url, {"input": "x"})
    assert status == 503
    async with session.post(url, json={"input": "x"}) as resp:
        assert resp.status == 200
        text = await resp.text()
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(session, url, {"input": "x"})
    status, _, body = await post(session, url, {"input": []})
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"


async def test_models_404_and_bad_json(server: MockServer, session: aiohttp.ClientSession) -> None:
    server.enqueue(Reply.text("kept for later"))
    async with session.get(f"{server.url}/models") as resp:
        assert resp.status == 200
        models = await resp.json()
    assert [m["id"] for m in models["data"]] == ["mock-model"]
    async with session.get(f"{server.url}/nope") as resp:
        assert resp.status == 404
        body = await resp.json()
    assert body["error"]["message"] == "Invalid URL (GET /v1/nope)"
    assert body["error"]["param"] is None
    url = f"{server.url}/chat/completions"
    async with session.post(url, data=b"{not json", headers={"Content-Type": "x"}) as resp:
        assert resp.status == 400
        body = await resp.json()
    assert body["error"]["type"] == "invalid_request_error"
    _, _, body = await post(session, url)
    assert body["choices"][0]["message"]["content"] == "kept for later"


# -- bookkeeping -----------------------------------------------------------------------


async def test_requests_are_recorded(server: MockServer, session: aiohttp.ClientSession) -> None:
    waiter = asyncio.create_task(server.wait_for_requests(2))
    url = f"{server.url}/chat/completions"
    async with session.post(url, json=CHAT, headers={"X-Trace": "abc"}) as resp:
        await resp.read()
    async with session.get(f"{server.url}/models") as resp:
        await resp.read()
    await waiter
    assert server.request_count == 2
    first, second = server.requests
    assert first == RecordedRequest(
        method="POST", path="/v1/chat/completions", headers=first.headers, json=CHAT
    )
    assert first.headers["x-trace"] == "abc"
    assert first.headers["content-type"] == "application/json"
    assert (second.method, second.path, second.json) == ("GET", "/v1/models", None)
    await server.wait_for_requests(2)  # already satisfied: returns at once
    with pytest.raises(TimeoutError):
        await server.wait_for_requests(3, timeout=0.01)

    server.enqueue(Reply.text("queued"))
    server.reset()
    assert (server.request_count, server.requests, server.connection_count) == (0, [], 0)
    _, headers, body = await post(session, url)
    assert headers["x-request-id"] == "req_1"
    assert body["choices"][0]["message"]["content"] == USER["content"]


async def test_enqueue_is_fifo_then_default(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    server.enqueue(Reply.text("one", delay=0.001), Reply.text("two"))
    server.default = Reply.text("fallback")
    url = f"{server.url}/chat/completions"
    texts = [(await post(session, url))[2]["choices"][0]["message"]["content"] for _ in range(4)]
    assert texts == ["one", "two", "fallback", "fallback"]


async def test_connection_count(server: MockServer) -> None:
    url = f"{server.url}/models"

    async def get(sess: aiohttp.ClientSession) -> None:
        async with sess.get(url) as resp:
            await resp.read()

    async with aiohttp.ClientSession() as sess:
        for _ in range(3):
            await get(sess)
        assert server.connection_count == 1
    server.reset()
    async with aiohttp.ClientSession() as sess:
        await asyncio.gather(*(get(sess) for _ in range(3)))
        assert server.connection_count > 1


def test_reply_validation() -> None:
    with pytest.raises(ValueError, match="status"):
        Reply.error(200)
    with pytest.raises(ValueError, match="chunk_size"):
        Reply.text("x", chunk_size=0)
    with pytest.raises(ValueError, match="after_chunks"):
        Reply.reset(after_chunks=-1)
    with pytest.raises(ValueError, match="delay"):
        Reply.echo(delay=-1)
    assert Reply.text("a b") == Reply.text("a b")
    assert hash(Reply.stream_error({"message": "x"})) == hash(Reply.stream_error({"message": "x"}))


# -- command line ----------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_cli_serves_until_sigterm(session: aiohttp.ClientSession) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "llmfast.testing",
        "--port",
        "0",
        "--chunks",
        "5",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        match = re.fullmatch(
            r"llmfast mock server listening on (http://127\.0\.0\.1:\d+/v1)\n", line
        )
        assert match, line
        events = await sse(session, match.group(1))
        assert len(chunks(events)) == 1 + 5 + 1
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        assert out == b""
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()


async def test_raw_reply_replays_bytes_exactly() -> None:
    body = b"data: one\r\n\r\n: comment\n\ndata: [DONE]\n\n"
    async with MockServer() as server, aiohttp.ClientSession() as session:
        server.enqueue(Reply.raw(body, write_size=5, headers={"X-Replay": "1"}))
        async with session.post(f"{server.url}/chat/completions", json={"model": "m"}) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "text/event-stream"
            assert resp.headers["X-Replay"] == "1"
            assert await resp.read() == body


# -- the other wire formats ----------------------------------------------------------------


async def _events(session: aiohttp.ClientSession, url: str, body: Any) -> list[tuple[str, Any]]:
    """POST and split an Anthropic-style SSE body into (event name, decoded data)."""
    async with session.post(url, json=body) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/event-stream"
        assert resp.headers["request-id"] == resp.headers["x-request-id"]
        raw = (await resp.read()).decode()
    blocks = raw.removesuffix("\n\n").split("\n\n")
    out = []
    for block in blocks:
        name, data = block.split("\n")
        out.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


ANTHROPIC_BODY = {"model": "claude", "max_tokens": 100, "messages": [USER], "stream": True}


async def test_anthropic_event_sequence(server: MockServer, session: aiohttp.ClientSession) -> None:
    server.enqueue(Reply.tool_calls(CALLS, text="Checking.", reasoning="Two tools."))
    events = await _events(session, f"{server.url}/messages", ANTHROPIC_BODY)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_start") == names.count("content_block_stop") == 4
    starts = [data["content_block"] for name, data in events if name == "content_block_start"]
    assert [b["type"] for b in starts] == ["thinking", "text", "tool_use", "tool_use"]
    assert [b.get("id") for b in starts[2:]] == ["call_w", "toolu_mock1"]
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    kinds = {d["type"] for d in deltas}
    assert kinds == {"thinking_delta", "signature_delta", "text_delta", "input_json_delta"}
    assert "".join(d.get("thinking", "") for d in deltas) == "Two tools."
    assert "".join(d.get("text", "") for d in deltas) == "Checking."
    for k, call in enumerate(CALLS):
        fragments = [
            data["delta"]["partial_json"]
            for name, data in events
            if name == "content_block_delta" and data["index"] == k + 2
        ]
        assert len(fragments) > 2
        assert json.loads("".join(fragments)) == call["arguments"]
    final = events[-2][1]
    assert final["delta"]["stop_reason"] == "tool_use"
    assert final["usage"]["output_tokens"] > 0


async def test_anthropic_bodies_and_errors(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    url = f"{server.url}/messages"
    server.enqueue(
        Reply.text("Hi!", finish_reason="length"),
        Reply.error(529),
        Reply.stream_error({"message": "Overloaded", "type": "overloaded_error"}, after_chunks=1),
    )
    _, headers, body = await post(session, url, {**ANTHROPIC_BODY, "stream": False})
    assert body["type"] == "message"
    assert body["content"] == [{"type": "text", "text": "Hi!"}]
    assert body["stop_reason"] == "max_tokens"
    assert body["usage"]["input_tokens"] == 3
    status, headers, body = await post(session, url, ANTHROPIC_BODY)
    assert status == 529
    assert headers["request-id"] == "req_2"
    assert body["type"] == "error"
    assert body["error"]["type"] == "overloaded_error"
    events = await _events(session, url, ANTHROPIC_BODY)
    assert [name for name, _ in events] == ["message_start", "error"]
    assert events[1][1] == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    status, _, body = await post(session, url, {"model": "m", "messages": []})
    assert status == 400
    assert body["error"] == {
        "type": "invalid_request_error",
        "message": "max_tokens: Field required",
    }


async def test_ollama_ndjson(server: MockServer, session: aiohttp.ClientSession) -> None:
    url = f"{server.url_for('ollama')}/api/chat"
    server.enqueue(Reply.text("a b", reasoning="hm"), Reply.tool_calls(CALLS))
    body = {"model": "llama3.2", "messages": [USER]}  # Ollama streams by default
    async with session.post(url, json=body) as resp:
        assert resp.content_type == "application/x-ndjson"
        raw = await resp.read()
    lines = [json.loads(line) for line in raw.split(b"\n") if line]
    assert raw.endswith(b"\n")
    assert [line["message"].get("thinking") for line in lines[:1]] == ["hm"]
    assert [line["message"]["content"] for line in lines[1:3]] == ["a ", "b"]
    assert [line["done"] for line in lines] == [False, False, False, True]
    assert lines[-1]["done_reason"] == "stop"
    assert (lines[-1]["prompt_eval_count"], lines[-1]["eval_count"]) == (3, 3)
    _, _, whole = await post(session, url, {**body, "stream": False})
    assert whole["done"] is True
    calls = whole["message"]["tool_calls"]
    assert [c["function"]["arguments"] for c in calls] == [c["arguments"] for c in CALLS]
    status, _, error = await post(session, url, {"messages": []})
    assert (status, error) == (400, {"error": "model is required"})
    status, _, missing = await post(session, f"{server.url_for('ollama')}/api/nope", body)
    assert (status, missing) == (404, {"error": "Invalid URL (POST /api/nope)"})
    _, _, embedded = await post(
        session, f"{server.url_for('ollama')}/api/embed", {"model": "e", "input": ["x", "y z"]}
    )
    assert [len(v) for v in embedded["embeddings"]] == [8, 8]
    assert embedded["prompt_eval_count"] == 3


async def test_gemini_sse_is_crlf_framed(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    base = f"{server.url_for('gemini')}/models/gemini-x"
    body = {"contents": [{"role": "user", "parts": [{"text": "one two"}]}]}
    async with session.post(f"{base}:streamGenerateContent?alt=sse", json=body) as resp:
        assert resp.content_type == "text/event-stream"
        raw = (await resp.read()).decode()
    blocks = raw.removesuffix("\r\n\r\n").split("\r\n\r\n")
    events = [json.loads(block.removeprefix("data: ")) for block in blocks]
    texts = [e["candidates"][0]["content"]["parts"][0]["text"] for e in events]
    assert texts == ["one ", "two", ""]
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"
    assert all(e["modelVersion"] == "gemini-x" for e in events)
    assert server.requests[-1].query == "alt=sse"
    status, _, error = await post(session, f"{base}:streamGenerateContent", body)
    assert status == 400
    assert error["error"]["status"] == "INVALID_ARGUMENT"
    server.enqueue(Reply.error(429, message="quota"))
    status, _, error = await post(session, f"{base}:generateContent", body)
    assert status == 429
    assert error == {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}
    _, _, one = await post(
        session,
        f"{base}:embedContent",
        {"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 3},
    )
    assert len(one["embedding"]["values"]) == 3
    requests = [{"model": "models/gemini-x", "content": {"parts": [{"text": t}]}} for t in "ab"]
    _, _, batch = await post(session, f"{base}:batchEmbedContents", {"requests": requests})
    assert [len(e["values"]) for e in batch["embeddings"]] == [8, 8]


async def test_openai_reasoning_deltas(server: MockServer, session: aiohttp.ClientSession) -> None:
    server.enqueue(Reply.text("ok", reasoning="let me think"), Reply.text("ok", reasoning="hm"))
    decoded = chunks(await sse(session, server.url))
    reasoning = [c["choices"][0]["delta"].get("reasoning_content") for c in decoded]
    assert "".join(r for r in reasoning if r) == "let me think"
    assert content(await sse(session, server.url)) == "ok"
    _, _, body = await post(session, f"{server.url}/chat/completions")
    assert body["choices"][0]["message"]["content"] == USER["content"]


def test_url_for(server: MockServer) -> None:
    root = server.root_url
    assert server.url_for("openai") == server.url == root + "/v1"
    assert server.url_for("anthropic") == root + "/v1"
    assert server.url_for("ollama") == root
    assert server.url_for("gemini") == root + "/v1beta"
    with pytest.raises(ValueError, match="unknown provider"):
        server.url_for("mistral")


async def test_wait_open_connections_follows_opens_and_closes() -> None:
    async with MockServer() as server:
        session = aiohttp.ClientSession()
        try:
            async with session.get(f"{server.url}/models") as resp:
                await resp.read()
            await server.wait_open_connections(1)  # kept alive in the client's pool
            assert server.open_connections == 1
        finally:
            await session.close()
        await server.wait_open_connections(0)
        assert server.connection_count == 1
        with pytest.raises(TimeoutError):
            await server.wait_open_connections(3, timeout=0.05)
