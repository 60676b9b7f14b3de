"""The gateway's stream encoders: the byte templates of the common text chunk give the
same events as the general path, for any chunk."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from llmfast.gateway.anthropic_wire import StreamTranslator
from llmfast.gateway.openai_frames import ChunkFrames
from llmfast.gateway.openai_wire import chunk_json
from llmfast.types import (
    ChatCompletionChunk,
    ChunkChoice,
    Delta,
    FunctionDelta,
    ToolCallDelta,
    Usage,
)

_decode = msgspec.json.Decoder().decode

# The fast paths test these fields one by one: a new field must be considered there.
KNOWN = {
    ChatCompletionChunk: (
        "id",
        "object",
        "created",
        "model",
        "choices",
        "usage",
        "system_fingerprint",
        "error",
        "native",
    ),
    ChunkChoice: ("index", "delta", "finish_reason", "logprobs", "provider_finish_reason"),
    Delta: (
        "role",
        "content",
        "refusal",
        "tool_calls",
        "reasoning_content",
        "reasoning_signature",
    ),
}


def test_the_fast_paths_know_every_field() -> None:
    for kind, fields in KNOWN.items():
        assert kind.__struct_fields__ == fields, kind


texts = st.text(max_size=20)
maybe = st.none() | texts
deltas = st.builds(
    Delta,
    role=st.none() | st.just("assistant"),
    content=maybe,
    refusal=st.none() | st.just("no"),
    tool_calls=st.none()
    | st.lists(
        st.builds(
            ToolCallDelta,
            index=st.integers(0, 2),
            id=st.none() | st.just("call_1"),
            function=st.builds(FunctionDelta, name=maybe, arguments=maybe),
        ),
        max_size=2,
    ),
    reasoning_content=st.none() | st.just("hmm"),
)
choices = st.builds(
    ChunkChoice,
    index=st.sampled_from([0, 0, 0, 1]),
    delta=deltas,
    finish_reason=st.none() | st.sampled_from(["stop", "length", "tool_calls"]),
    provider_finish_reason=st.none() | st.just("end_turn"),
)
usages = st.builds(Usage, prompt_tokens=st.integers(0, 99), completion_tokens=st.integers(0, 99))
chunks = st.builds(
    ChatCompletionChunk,
    id=st.sampled_from(["", "chatcmpl-1", 'q"uote']),
    created=st.sampled_from([0, 1796172978]),
    model=st.sampled_from(["", "m", "upstream-model"]),
    choices=st.lists(choices, max_size=2),
    usage=st.none() | usages,
    system_fingerprint=st.none() | st.just("fp_1"),
)
# Streams as they come: mostly plain text deltas from one id and model.
plain = st.builds(
    ChatCompletionChunk,
    id=st.just("chatcmpl-1"),
    created=st.just(7),
    model=st.just("m"),
    choices=st.builds(ChunkChoice, delta=st.builds(Delta, content=texts)).map(lambda c: [c]),
    system_fingerprint=st.just("fp_1"),
)
streams = st.lists(plain | chunks, max_size=12)


def _frames(data: bytes) -> list[Any]:
    assert data == b"" or data.endswith(b"\n\n")
    events = [e for e in data.split(b"\n\n") if e]
    assert all(e.startswith(b"data: ") for e in events)
    return [_decode(e.removeprefix(b"data: ")) for e in events]


def _expected_openai(chunk: ChatCompletionChunk, include_usage: bool) -> list[Any]:
    if include_usage or chunk.usage is None:
        return [_decode(chunk_json(chunk))]
    if not chunk.choices:
        return []
    return [_decode(chunk_json(chunk, with_usage=False))]


@settings(max_examples=60)
@given(streams, st.booleans())
def test_openai_frames_are_chunk_json(stream: list[ChatCompletionChunk], usage: bool) -> None:
    frames = ChunkFrames(include_usage=usage)
    half = len(stream) // 2
    data = frames.batch(stream[:half]) + frames.batch(stream[half:])
    assert _frames(data) == [e for c in stream for e in _expected_openai(c, usage)]
    reported = [c.usage for c in stream if c.usage is not None]
    assert frames.usage == (reported[-1] if reported else None)
    assert frames.finish() == b"data: [DONE]\n\n"


@settings(max_examples=60)
@given(streams)
def test_anthropic_batches_are_the_events_of_each_chunk(stream: list[ChatCompletionChunk]) -> None:
    one_by_one = StreamTranslator("claude-x")
    expected = b"".join(one_by_one.feed(chunk) for chunk in stream) + one_by_one.finish()
    batched = StreamTranslator("claude-x")
    half = len(stream) // 2
    data = batched.batch(stream[:half]) + batched.batch(stream[half:]) + batched.finish()
    assert data == expected
    assert batched.usage == one_by_one.usage


def test_the_text_template_is_taken_for_plain_deltas() -> None:
    chunk = ChatCompletionChunk(
        id="c", created=1, model="m", choices=[ChunkChoice(delta=Delta(content='a "b"\n'))]
    )
    data = ChunkFrames(include_usage=False).batch([chunk, chunk])
    frame = (
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[{"index":0,"delta":{"content":"a \\"b\\"\\n"},"logprobs":null,'
        b'"finish_reason":null}]}\n\n'
    )
    assert data == frame * 2
