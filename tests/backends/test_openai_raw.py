"""The OpenAI chat stream read in raw mode (``RawChatStreamParser``): the same chunks,
checks and errors as the typed parser, with the text deltas kept as the upstream's
bytes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmfast.backends._openai_raw import RawChatStreamParser
from llmfast.backends.openai import _ChatStreamParser
from llmfast.errors import DecodeError, StreamEventError, StreamTruncatedError
from llmfast.raw_events import RawEvents
from llmfast.types import ChatCompletionChunk

_HEAD = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 7, "model": "m"}


def _event(choices: list[Any], **extra: Any) -> bytes:
    return json.dumps({**_HEAD, "choices": choices, **extra}, separators=(",", ":")).encode()


def _text(text: str) -> bytes:
    delta = {"content": text}
    return _event([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}])


def _stream(texts: list[str], *, usage: bool = True, finish: bool = True) -> list[bytes]:
    role = {"role": "assistant", "content": ""}
    payloads = [_event([{"index": 0, "delta": role, "logprobs": None, "finish_reason": None}])]
    payloads += [_text(t) for t in texts]
    if finish:
        payloads.append(_event([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    if usage:
        counts = {"prompt_tokens": 3, "completion_tokens": len(texts), "total_tokens": 9}
        payloads.append(_event([], usage=counts))
    return payloads


def _sse(payloads: list[bytes], done: bool = True) -> bytes:
    body = b"".join(b"data: " + p + b"\n\n" for p in payloads)
    return body + (b"data: [DONE]\n\n" if done else b"")


def _feed(body: bytes, cuts: list[int]) -> tuple[list[RawEvents], RawChatStreamParser]:
    parser = RawChatStreamParser()
    reads = []
    start = 0
    for cut in [*sorted(cuts), len(body)]:
        if cut > start:
            events = parser.feed(body[start:cut])
            if events:
                reads.append(events)
            start = cut
    parser.close()
    return reads, parser


def _typed(body: bytes) -> list[ChatCompletionChunk]:
    parser = _ChatStreamParser()
    chunks = parser.feed(body)
    return chunks + parser.close()


texts = st.lists(
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=0, max_size=8),
    min_size=0,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(texts=texts, cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=6))
def test_the_same_chunks_as_the_typed_parser_and_the_upstreams_bytes(
    texts: list[str], cuts: list[int]
) -> None:
    payloads = _stream(texts)
    body = _sse(payloads)
    reads, parser = _feed(body, [c % (len(body) + 1) for c in cuts])
    assert parser.done
    assert [p for r in reads for p in r.payloads] == payloads  # exactly what came
    assert [c for r in reads for c in r] == _typed(body)  # iterating types them all
    assert not any(r.end for r in reads[:-1])  # (the last has it if [DONE] came with events)
    plain_texts = {_text(t) for t in texts if t}
    for read in reads:  # whatever is left as bytes is a non-empty text delta
        for i, payload in enumerate(read.payloads):
            assert i in read.notable or payload in plain_texts


def test_text_deltas_stay_bytes_after_the_first() -> None:
    payloads = _stream(["a", " b", ' "c"', " d\\n"])
    (read,), _ = _feed(_sse(payloads), [])
    assert sorted(read.notable) == [0, 5, 6]  # role, finish, usage; the texts are bytes
    assert read.notable[6].usage is not None
    assert read.notable[6].usage.completion_tokens == 4


def test_a_payload_shaped_like_a_text_delta_with_more_in_it_is_decoded() -> None:
    first, second = _text("a"), _text("b")
    sneaky = second.replace(b'"b"', b'"b","role":"tool"')  # the template's ends, two fields
    payloads = [_stream([])[0], first, sneaky, *_stream([])[1:]]
    (read,), _ = _feed(_sse(payloads), [])
    assert 2 in read.notable
    assert read.notable[2].choices[0].delta.role == "tool"


def test_an_error_event_mid_stream_keeps_what_came_before() -> None:
    payloads = _stream(["a", "b"], usage=False, finish=False)
    body = _sse(payloads, done=False) + b'data: {"error":{"message":"overloaded"}}\n\n'
    parser = RawChatStreamParser()
    events = parser.feed(body)
    assert events.payloads == payloads
    with pytest.raises(StreamEventError):
        parser.feed(b"")


def test_a_named_error_event_raises() -> None:
    parser = RawChatStreamParser()
    with pytest.raises(StreamEventError):
        parser.feed(b'event: error\ndata: {"error":{"message":"no"}}\n\n')


def test_malformed_json_is_a_decode_error_after_the_good_events() -> None:
    payloads = _stream(["a", "b"], usage=False, finish=False)
    parser = RawChatStreamParser()
    events = parser.feed(_sse(payloads, done=False) + b"data: {not json\n\n")
    assert events.payloads == payloads
    with pytest.raises(DecodeError):
        parser.feed(b"")


def test_a_text_delta_whose_text_is_not_a_string_is_a_decode_error() -> None:
    payloads = _stream(["a", "b"], usage=False, finish=False)
    bad = _text("c").replace(b'"c"', b"5")
    parser = RawChatStreamParser()
    parser.feed(_sse(payloads, done=False))
    with pytest.raises(DecodeError):
        parser.feed(_sse([bad], done=False))


def test_a_stream_cut_before_done_or_without_a_finish_is_truncated() -> None:
    parser = RawChatStreamParser()
    parser.feed(_sse(_stream(["a"]), done=False))
    with pytest.raises(StreamTruncatedError):
        parser.close()
    parser = RawChatStreamParser()
    parser.feed(_sse(_stream(["a"], finish=False)))
    with pytest.raises(StreamTruncatedError):
        parser.close()


def test_pings_and_events_after_done_are_not_kept() -> None:
    body = b": ping\n\n" + _sse(_stream(["a"])) + b"data: " + _text("late") + b"\n\n"
    (read,), _ = _feed(body, [])
    assert _text("late") not in read.payloads
    assert read.end
