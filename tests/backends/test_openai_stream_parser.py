"""The OpenAI stream parser's fast path (a read's plain payloads decoded in one pass)
against an exact model: every event decoded one at a time, in order.

Streams mix plain chunks (with and without finish reasons, choices 0 and 1), error
events, malformed data, comments, named events and ``[DONE]`` anywhere, cut into
arbitrary reads: the chunks, the error and the truncation verdict must be the same.
"""

from __future__ import annotations

from itertools import pairwise

import msgspec
from hypothesis import example, given, settings
from hypothesis import strategies as st

from llmfast.backends.openai import OpenAIBackend
from llmfast.backends.sse import parse
from llmfast.errors import DecodeError, LLMFastError, StreamEventError, StreamTruncatedError
from llmfast.types import ChatCompletionChunk

_decode = msgspec.json.Decoder(ChatCompletionChunk).decode


def _chunk(index: int, text: str, reason: str | None) -> bytes:
    choice = {"index": index, "delta": {"content": text}, "finish_reason": reason}
    return msgspec.json.encode({"id": "c", "model": "m", "created": 1, "choices": [choice]})


PLAIN = st.builds(
    lambda i, t, r: b"data: " + _chunk(i, t, r) + b"\n\n",
    st.sampled_from([0, 0, 0, 1]),
    st.sampled_from(["a", "b c", ""]),
    st.sampled_from([None, None, None, "stop"]),
)
ERROR = b'data: {"error": {"message": "boom"}}\n\n'
FINISH = b"".join(b"data: " + _chunk(i, "", "stop") + b"\n\n" for i in (0, 1))
EVENTS = st.one_of(
    PLAIN,
    PLAIN,
    PLAIN,
    st.just(ERROR),
    st.just(b"data: {\n\n"),  # malformed
    st.just(b": keep-alive\n\n"),
    st.just(b"event: ping\ndata: {}\n\n"),
    st.just(b"data: [DONE]\n\n"),
)


def _model(body: bytes) -> tuple[list[ChatCompletionChunk], type[LLMFastError] | None]:
    """What the stream means, event by event (the exact decoder, one decode each)."""
    chunks: list[ChatCompletionChunk] = []
    for event in parse([body]):
        if event.data == "[DONE]":
            opened = {c.index for chunk in chunks for c in chunk.choices}
            finished = {
                c.index for chunk in chunks for c in chunk.choices if c.finish_reason is not None
            }
            if finished and opened <= finished:
                return chunks, None
            return chunks, StreamTruncatedError
        if event.event != "message":
            continue
        try:
            chunk = _decode(event.data)
        except msgspec.DecodeError:
            return chunks, DecodeError
        if chunk.error is not None:
            return chunks, StreamEventError
        chunks.append(chunk)
    return chunks, StreamTruncatedError  # no [DONE]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(EVENTS, max_size=12),
    st.sampled_from([b"", b"data: [DONE]\n\n", FINISH + b"data: [DONE]\n\n"]),
    st.lists(st.integers(0, 2000), max_size=6),
)
@example([b"data: " + _chunk(0, "a", None) + b"\n\n", ERROR], b"", [])  # chunks, then error
@example(
    [b"data: " + _chunk(0, "a", "stop") + b"\n\n" + b"data: " + _chunk(1, "b", None) + b"\n\n"],
    b"data: [DONE]\n\n",
    [],
)
def test_fast_path_matches_the_exact_model(
    events: list[bytes], end: bytes, cuts: list[int]
) -> None:
    body = b"".join(events) + end
    parser = OpenAIBackend(api_key="k").stream_parser()
    got: list[ChatCompletionChunk] = []
    error: type[LLMFastError] | None = None
    bounds = sorted({0, len(body), *(c for c in cuts if c < len(body))})
    try:
        for low, high in pairwise(bounds):
            got += parser.feed(body[low:high])
            if parser.failure is not None:
                raise parser.failure
            if parser.done:
                break
        got += parser.close()
        if parser.failure is not None:
            raise parser.failure
    except LLMFastError as exc:
        error = type(exc)
    expected, expected_error = _model(body)
    assert got == expected
    assert error is expected_error
