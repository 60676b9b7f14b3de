"""Streams that end "cleanly" but unfinished are truncations, never an empty success.

llama-cpp-python's server interrupts a running stream when another request arrives:
it sends the role chunk and ``data: [DONE]``, with no finish reason. Every backend's
end marker (OpenAI ``[DONE]``, Anthropic ``message_stop``, Ollama's done line, Gemini's
end of body) is checked: a choice without a finish reason makes the stream a
``StreamTruncatedError`` (retryable until a chunk with something in it reaches the
caller), and the cache stores only finished results, streamed or not.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llmfast
from llmfast import ChatAccumulator, ChatCompletionChunk, Client
from llmfast.backends._anthropic_wire import AnthropicStreamParser
from llmfast.backends._gemini_wire import GeminiStreamParser
from llmfast.backends._http import ChunkParser
from llmfast.backends.openai import _ChatStreamParser
from llmfast.commit import commit_first_chunk
from llmfast.layers import Cache, Retry
from llmfast.testing import MockServer, Reply
from llmfast.transport import Request, Response
from llmfast.types import ChatRequest, ChunkChoice, Delta, UserMessage

PROVIDERS = ["openai", "anthropic", "ollama", "gemini"]
# Events of Reply.echo() that make no chunk with anything in it: OpenAI's role chunk;
# Anthropic's message_start, text block start and ping; Ollama and Gemini: none.
EMPTY_HEAD = {"openai": 1, "anthropic": 3, "ollama": 0, "gemini": 0}
PROMPT = "one two three"

# What llama-cpp-python sends a stream it interrupts for the next request.
LLAMA_CPP_INTERRUPTED = (
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,'
    b'"model":"qwen2.5-0.5b","choices":[{"index":0,"delta":{"role":"assistant"},'
    b'"logprobs":null,"finish_reason":null}]}\r\n\r\n'
    b"data: [DONE]\r\n\r\n"
)


def client_for(
    server: MockServer, provider: str, layers: list[llmfast.Layer] | None = None
) -> Client:
    key = None if provider == "ollama" else "test-key"
    backend = llmfast.backend_for(
        provider, base_url=server.url_for(provider), api_key=key, model="m"
    )
    return Client(backend, layers=layers or [])


async def streamed(client: Client, prompt: str = PROMPT) -> llmfast.ChatCompletion:
    async with client.stream(prompt, temperature=0) as stream:
        return await stream.collect()


# -- over real HTTP, every backend ----------------------------------------------------


async def test_llama_cpp_interrupted_stream_is_not_an_empty_success(server: MockServer) -> None:
    server.enqueue(Reply.raw(LLAMA_CPP_INTERRUPTED))
    # One attempt: a default client retries it (test_default_retries.py).
    async with Client(base_url=server.url, model="m", layers=[]) as client:
        with pytest.raises(llmfast.StreamTruncatedError) as caught:
            await streamed(client)
    assert isinstance(caught.value, llmfast.StreamInterruptedError)  # the role chunk came
    assert "[DONE]" in str(caught.value)
    assert "no finish reason" in str(caught.value)
    assert caught.value.partial is not None
    assert caught.value.partial.text is None


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_end_unfinished_raises_truncated(server: MockServer, provider: str) -> None:
    server.enqueue(Reply.end_unfinished(after_chunks=EMPTY_HEAD[provider] + 1))
    async with client_for(server, provider) as client:
        with pytest.raises(llmfast.StreamTruncatedError) as caught:
            await streamed(client)
        # the next call is a normal one: the connection was left in a clean state
        assert (await streamed(client)).text == PROMPT
    error = caught.value
    assert isinstance(error, llmfast.StreamInterruptedError)
    assert error.partial_text == "one "  # the one content event sent before the end
    assert error.partial is not None
    assert error.partial.choices[0].finish_reason is None


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_end_unfinished_before_content_is_retried(server: MockServer, provider: str) -> None:
    server.enqueue(Reply.end_unfinished(after_chunks=EMPTY_HEAD[provider]))
    async with client_for(server, provider, [Retry(max_attempts=2)]) as client:
        completion = await streamed(client)
    assert completion.text == PROMPT
    assert completion.choices[0].finish_reason == "stop"
    assert server.request_count == 2


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_end_unfinished_after_content_is_not_retried(
    server: MockServer, provider: str
) -> None:
    server.enqueue(Reply.end_unfinished(after_chunks=EMPTY_HEAD[provider] + 1))
    async with client_for(server, provider, [Retry(max_attempts=3)]) as client:
        with pytest.raises(llmfast.StreamInterruptedError) as caught:
            await streamed(client)
    assert isinstance(caught.value, llmfast.StreamTruncatedError)
    assert caught.value.partial_text == "one "
    assert server.request_count == 1  # "one " reached the caller: committed


async def test_twenty_concurrent_llama_cpp_streams(server: MockServer) -> None:
    """The scenario as measured: 19 of 20 concurrent streams were interrupted."""
    server.enqueue(*[Reply.end_unfinished() for _ in range(19)])

    async def run(client: Client) -> list[Any]:
        calls = [streamed(client, f"{PROMPT} {k}") for k in range(20)]
        return await asyncio.gather(*calls, return_exceptions=True)

    async with Client(base_url=server.url, model="m", layers=[]) as client:  # no retries
        outcomes = await run(client)
    done = [o for o in outcomes if isinstance(o, llmfast.ChatCompletion)]
    failed = [o for o in outcomes if isinstance(o, llmfast.StreamTruncatedError)]
    assert len(done) == 1, outcomes
    assert len(failed) == 19, outcomes
    assert done[0].text is not None
    assert done[0].text.startswith(PROMPT)

    server.reset()
    server.enqueue(*[Reply.end_unfinished() for _ in range(19)])
    async with Client(base_url=server.url, model="m") as client:  # retries by default
        outcomes = await run(client)
    assert [o.text if isinstance(o, llmfast.ChatCompletion) else o for o in outcomes] == [
        f"{PROMPT} {k}" for k in range(20)
    ]
    assert server.request_count == 39


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_cache_never_stores_an_unfinished_stream(server: MockServer, provider: str) -> None:
    server.enqueue(Reply.end_unfinished(after_chunks=EMPTY_HEAD[provider] + 1))
    async with client_for(server, provider, [Cache()]) as client:
        with pytest.raises(llmfast.StreamTruncatedError):
            await streamed(client)
        assert (await streamed(client)).text == PROMPT  # a miss: nothing was stored
        assert server.request_count == 2
        assert (await streamed(client)).text == PROMPT  # the finished one was
        assert server.request_count == 2


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_cache_with_retry_stores_the_recovered_stream(
    server: MockServer, provider: str
) -> None:
    server.enqueue(Reply.end_unfinished(after_chunks=EMPTY_HEAD[provider]))
    async with client_for(server, provider, [Cache(), Retry()]) as client:
        first = await streamed(client)
        again = await streamed(client)
    assert first.text == again.text == PROMPT
    assert again.choices[0].finish_reason == "stop"
    assert server.request_count == 2  # the truncated attempt, the retry; then a hit


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_unfinished_whole_answer_is_delivered_not_cached(
    server: MockServer, provider: str
) -> None:
    server.enqueue(Reply.end_unfinished())
    async with client_for(server, provider, [Cache()]) as client:
        unfinished = await client.chat(PROMPT, temperature=0)
        assert unfinished.text == PROMPT
        assert unfinished.choices[0].finish_reason is None
        finished = await client.chat(PROMPT, temperature=0)  # not served from the cache
        assert finished.choices[0].finish_reason == "stop"
        assert server.request_count == 2
        assert (await client.chat(PROMPT, temperature=0)).choices[0].finish_reason == "stop"
        assert server.request_count == 2  # the finished answer was cached


# -- the parsers, I/O-free ---------------------------------------------------------------


def _openai_event(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
    choice = {"index": index, "delta": delta, "finish_reason": finish}
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return b"data: " + json.dumps({**chunk, "choices": [choice]}).encode() + b"\n\n"


_USAGE_ONLY = (
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}\n\n'
)
_DONE = b"data: [DONE]\n\n"


def _run(parser: ChunkParser, body: bytes, sizes: list[int] | None = None) -> ChatAccumulator:
    accumulator = ChatAccumulator()
    start = 0
    for size in sizes or [len(body)]:
        for chunk in parser.feed(body[start : start + size]):
            accumulator.add(chunk)
        start += size
    for chunk in parser.feed(body[start:]) if start < len(body) else []:
        accumulator.add(chunk)
    for chunk in parser.close():
        accumulator.add(chunk)
    return accumulator


def _openai_body(n: int, finished: set[int], usage: bool) -> bytes:
    events = [_openai_event(i, {"role": "assistant", "content": ""}) for i in range(n)]
    events += [_openai_event(i, {"content": f"text {i}"}) for i in range(n)]
    events += [_openai_event(i, {}, "stop") for i in sorted(finished)]
    if usage:
        events.append(_USAGE_ONLY)
    return b"".join(events) + _DONE


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 4),
    data=st.data(),
    usage=st.booleans(),
    cuts=st.lists(st.integers(1, 97), max_size=6),
)
def test_openai_every_choice_needs_a_finish_reason(
    n: int, data: st.DataObject, usage: bool, cuts: list[int]
) -> None:
    finished = data.draw(st.sets(st.integers(0, n - 1)))
    body = _openai_body(n, finished, usage)
    if len(finished) == n:
        result = _run(_ChatStreamParser(), body, cuts).result()
        assert [c.finish_reason for c in result.choices] == ["stop"] * n
        assert (result.usage is not None) is usage
    else:
        with pytest.raises(llmfast.StreamTruncatedError, match="no finish reason"):
            _run(_ChatStreamParser(), body, cuts)


def test_openai_done_with_no_choice_at_all_is_truncated() -> None:
    with pytest.raises(llmfast.StreamTruncatedError, match="no choice had a finish reason"):
        _run(_ChatStreamParser(), _USAGE_ONLY + _DONE)


def test_openai_chunk_after_the_finish_keeps_the_choice_finished() -> None:
    body = (
        _openai_event(0, {"content": "hi"})
        + _openai_event(0, {}, "stop")
        + _openai_event(0, {"content": ""})  # some servers send a trailing empty delta
        + _DONE
    )
    assert _run(_ChatStreamParser(), body).result().choices[0].finish_reason == "stop"


def _anthropic(kind: str, payload: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n".encode()


_A_START = _anthropic(
    "message_start", {"message": {"id": "msg_1", "model": "claude", "usage": {"input_tokens": 3}}}
)
_A_TEXT = _anthropic(
    "content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "hi"}}
)
_A_STOP = _anthropic("message_stop", {})


@pytest.mark.parametrize(
    ("middle", "finished"),
    [
        (b"", False),  # message_stop without message_delta
        (_anthropic("message_delta", {"delta": {"stop_reason": None}}), False),
        (_anthropic("message_delta", {"delta": {"stop_reason": "end_turn"}}), True),
    ],
    ids=["no-message-delta", "null-stop-reason", "end-turn"],
)
def test_anthropic_finish_is_message_delta_stop_reason(middle: bytes, finished: bool) -> None:
    body = _A_START + _A_TEXT + middle + _A_STOP
    if finished:
        assert _run(AnthropicStreamParser(), body).result().choices[0].finish_reason == "stop"
    else:
        with pytest.raises(llmfast.StreamTruncatedError, match="message_stop"):
            _run(AnthropicStreamParser(), body)


def _gemini(candidates: list[dict[str, Any]]) -> bytes:
    return b"data: " + json.dumps({"candidates": candidates}).encode() + b"\r\n\r\n"


def test_gemini_every_candidate_needs_a_finish_reason() -> None:
    text = {"content": {"parts": [{"text": "hi"}], "role": "model"}}
    start = _gemini([{**text, "index": 0}, {**text, "index": 1}])
    one = _gemini([{**text, "index": 0, "finishReason": "STOP"}])
    other = _gemini([{**text, "index": 1, "finishReason": "MAX_TOKENS"}])
    with pytest.raises(llmfast.StreamTruncatedError, match="choice 1 had no finish reason"):
        _run(GeminiStreamParser(), start + one)
    result = _run(GeminiStreamParser(), start + one + other).result()
    assert [c.finish_reason for c in result.choices] == ["stop", "length"]


def test_finished_helpers() -> None:
    chunk = ChatCompletionChunk(choices=[ChunkChoice(delta=Delta(content="x"))])
    done = ChatCompletionChunk(choices=[ChunkChoice(finish_reason="stop")])
    assert not llmfast.accumulate.chunks_finished([chunk])
    assert not llmfast.accumulate.chunks_finished([])
    assert llmfast.accumulate.chunks_finished([chunk, done])
    accumulator = ChatAccumulator()
    accumulator.add(chunk)
    assert not llmfast.accumulate.completion_finished(accumulator.result())
    accumulator.add(done)
    assert llmfast.accumulate.completion_finished(accumulator.result())


# -- the commit point ----------------------------------------------------------------------


def _response(chunks: list[Any], error: Exception | None = None) -> Response:
    async def body() -> AsyncIterator[Any]:
        for chunk in chunks:
            yield chunk
        if error is not None:
            raise error

    request = Request(ChatRequest(model="m", messages=[UserMessage("hi")]), stream=True)
    return Response(request, chunks=body())


async def test_commit_holds_back_empty_chunks_only() -> None:
    role = ChatCompletionChunk(choices=[ChunkChoice(delta=Delta(role="assistant", content=""))])
    text = ChatCompletionChunk(choices=[ChunkChoice(delta=Delta(content="hi"))])
    # failing after only empty chunks: the failure comes out of the commit (retryable)
    with pytest.raises(llmfast.StreamTruncatedError):
        await commit_first_chunk(_response([role, role], llmfast.StreamTruncatedError("cut")))
    # a chunk with text commits; everything comes through in order
    committed = await commit_first_chunk(_response([role, text, text]))
    assert [c async for c in committed] == [role, text, text]
    # a stream of nothing but empty chunks that ends is delivered as it came
    ended = await commit_first_chunk(_response([role]))
    assert [c async for c in ended] == [role]
    # the holding is bounded: a server sending only empty chunks commits after a few
    many = await commit_first_chunk(_response([role] * 40, llmfast.ReadError("reset")))
    seen: list[Any] = []
    with pytest.raises(llmfast.ReadError):
        async for chunk in many:
            seen.append(chunk)  # noqa: PERF401 - the list is what arrived before the error
    assert seen == [role] * 40


class _Unchecked:
    """A transport whose streams end after unfinished chunks without complaint (as a
    custom backend might): the cache itself must still refuse to store them."""

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, request: Request, /) -> Response:
        self.sent += 1
        chunk = ChatCompletionChunk(choices=[ChunkChoice(delta=Delta(content="half"))])
        return _response([chunk]) if request.stream else Response(request, result=_half())

    async def aclose(self) -> None:
        pass


def _half() -> llmfast.ChatCompletion:
    accumulator = ChatAccumulator()
    accumulator.add(ChatCompletionChunk(choices=[ChunkChoice(delta=Delta(content="half"))]))
    return accumulator.result()


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
async def test_cache_layer_checks_finish_reasons_itself(stream: bool) -> None:
    inner = _Unchecked()
    layer = Cache(identity="x")(inner)
    body = ChatRequest(model="m", messages=[UserMessage("hi")], temperature=0)
    for _ in range(2):
        response = await layer.send(Request(body, stream=stream))
        assert (await response.collect()).text == "half"
    assert inner.sent == 2  # never served from the cache
    await layer.aclose()


async def test_router_falls_over_from_an_interrupted_stream() -> None:
    async with MockServer() as first, MockServer() as second:
        first.enqueue(Reply.raw(LLAMA_CPP_INTERRUPTED))
        router = llmfast.Router([llmfast.OpenAIBackend(s.url, model="m") for s in (first, second)])
        async with Client(router) as client:
            assert (await streamed(client)).text == PROMPT
        assert (first.request_count, second.request_count) == (1, 1)
