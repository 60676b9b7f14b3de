"""The OpenAI chat stream read in raw mode (``RawChatStreamParser``): the same chunks,
checks and errors as the typed parser, with the text deltas kept as the upstream's
bytes."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmfast.backends import _openai_raw
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


def _outcome(parser: RawChatStreamParser, body: bytes) -> tuple[Any, ...]:
    """What ``parser`` makes of ``body``: the payloads kept, which were typed, the error."""
    try:
        events = parser.feed(body)
    except Exception as exc:
        return ("raised", type(exc).__name__)
    failure = type(parser.failure).__name__ if parser.failure is not None else None
    return (events.payloads, sorted(events.notable), failure)


def _assert_bulk_is_one_by_one(body: bytes, bulk_check: str) -> None:
    """``body`` read with the bulk check ``bulk_check`` ends as it does with that check
    refused (every payload looked at one by one)."""
    bulk = _outcome(RawChatStreamParser(), body)
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(_openai_raw, bulk_check, lambda *_: False)
        one_by_one = _outcome(RawChatStreamParser(), body)
    assert bulk == one_by_one


_ODD_MIDDLES = [
    b"5",
    b'""',
    b"",
    b" ",
    b'"a","b"',
    b'"a",\n"b"',
    b'"a\nb"',
    b'"x\\"',
    b'"a"] ',
    b' "spaced" ',
    b'"\\u00e9"',
    b'"a","',
    b'"',
]


@settings(max_examples=150, deadline=None)
@given(
    texts=st.lists(st.text(min_size=1, max_size=5), min_size=3, max_size=10),
    spoils=st.lists(
        st.tuples(st.integers(min_value=0, max_value=20), st.sampled_from(_ODD_MIDDLES)),
        min_size=1,
        max_size=3,
    ),
)
def test_a_run_checked_in_bulk_ends_like_one_checked_a_payload_at_a_time(
    texts: list[str], spoils: list[tuple[int, bytes]]
) -> None:
    """However text deltas of a run are spoilt (one holding two strings and another
    none, say), the bulk check of the run finds what the payload-by-payload check
    finds: the same payloads kept, typed, or refused."""
    payloads = _stream(texts)
    for at, middle in spoils:  # text deltas after the template's (payload 1)
        payloads[2 + at % (len(texts) - 1)] = _text("\x00").replace(b'"\\u0000"', middle)
    _assert_bulk_is_one_by_one(_sse(payloads), "_all_texts")


def test_a_run_of_texts_read_in_bulk_is_kept_as_it_came() -> None:
    texts = [f"w{i} " for i in range(40)]
    payloads = _stream(texts)
    (read,), _ = _feed(_sse(payloads), [])
    assert read.payloads == payloads
    assert sorted(read.notable) == [0, 41, 42]  # role, finish, usage
    assert "".join(c.text for c in read) == "".join(texts)


def test_a_payload_too_short_for_both_ends_of_the_template_is_decoded() -> None:
    """The template's head and tail overlapping in a payload is no text delta."""
    first = _text("a")
    head, _, tail = first.partition(b'"a"')
    short = head + tail[5:]  # starts with the head, ends with the tail's end: malformed
    payloads = [_stream([])[0], first, _text("b"), short]
    parser = RawChatStreamParser()
    events = parser.feed(_sse(payloads, done=False))
    assert events.payloads == payloads[:3]
    assert isinstance(parser.failure, DecodeError)


def test_a_text_delta_of_another_choice_in_a_run_is_decoded_and_tracked() -> None:
    """Differing from the template outside the text (here the choice's index, in a
    payload of the same length) makes it a notable event: choice 1 is tracked, and as
    it never finishes, the stream is truncated, as on the typed path."""
    other = _text("c").replace(b'"index":0', b'"index":1')
    payloads = _stream(["a", "b", "d"])
    payloads.insert(3, other)  # amid the run of texts, not at its end
    parser = RawChatStreamParser()
    read = parser.feed(_sse(payloads))
    assert read.payloads == payloads
    assert 3 in read.notable
    assert read.notable[3].choices[0].index == 1
    with pytest.raises(StreamTruncatedError):
        parser.close()
    with pytest.raises(StreamTruncatedError):
        _typed(_sse(payloads))


def test_two_broken_texts_that_would_read_as_two_strings_together_are_refused() -> None:
    """``"a","b`` and ``c"`` are no JSON strings, though ``["a","b,c"]`` reads as two:
    the bulk check does not take them (each is decoded in full, and refused)."""
    payloads = _stream(["a", "b", "c", "d"])
    payloads[3] = _text("\x00").replace(b'"\\u0000"', b'"a","b')
    payloads[4] = _text("\x00").replace(b'"\\u0000"', b'c"')
    parser = RawChatStreamParser()
    events = parser.feed(_sse(payloads))
    assert events.payloads == payloads[:3]
    assert isinstance(parser.failure, DecodeError)


def _decodes(payloads: list[bytes]) -> tuple[list[RawEvents], int]:
    """What the parser keeps of ``payloads``, and how many of them it decoded in full."""
    seen: list[bytes] = []
    typed = _openai_raw._typed

    def counted(payload: bytes) -> tuple[ChatCompletionChunk, bytes]:
        seen.append(payload)
        return typed(payload)

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(_openai_raw, "_typed", counted)
        reads, _ = _feed(_sse(payloads), [])
    return reads, len(seen)


@pytest.mark.parametrize("role", [{"content": ""}, {"content": "", "refusal": None}])
def test_the_role_event_gives_the_template_so_no_text_delta_is_decoded(
    role: dict[str, Any],
) -> None:
    payloads = _stream(["a", "b", "c"])
    delta = {"role": "assistant", **role}
    payloads[0] = _event([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}])
    reads, decoded = _decodes(payloads)
    assert decoded == 3  # role, finish, usage
    assert [p for r in reads for p in r.payloads] == payloads
    assert "".join(c.text for r in reads for c in r) == "abc"


_ROLE_SHAPES = [
    {"role": "assistant"},
    {"content": "", "role": "assistant"},
    {"role": "assistant", "content": None},
    {"role": "assistant", "content": "", "refusal": "no"},
]


@pytest.mark.parametrize("role", _ROLE_SHAPES)
def test_a_role_event_of_another_shape_gives_no_template_and_the_first_text_does(
    role: dict[str, Any],
) -> None:
    payloads = _stream(["a", "b", "c"])
    payloads[0] = _event([{"index": 0, "delta": role, "logprobs": None, "finish_reason": None}])
    reads, decoded = _decodes(payloads)
    assert decoded == 4  # role, the first text, finish, usage
    assert [p for r in reads for p in r.payloads] == payloads
    assert [c for r in reads for c in r] == _typed(_sse(payloads))


@pytest.mark.parametrize(
    "text_shape",
    [
        lambda t: _text(t).replace(b'"logprobs":null', b'"logprobs":null,"x":1'),
        lambda t: _text(t).replace(b'"created":7', b'"created":8'),
        lambda t: _text(t).replace(b'},"logprobs"', b',"refusal":null},"logprobs"'),
    ],
)
def test_when_the_texts_differ_from_what_the_role_event_foretold_they_are_decoded(
    text_shape: Any,
) -> None:
    """The role event's template is a guess: texts shaped otherwise are decoded, the
    first gives the real template, and the chunks are the typed parser's."""
    payloads = _stream([])[:1] + [text_shape(t) for t in ["a", "b", "c", "d"]] + _stream([])[1:]
    reads, decoded = _decodes(payloads)
    assert [p for r in reads for p in r.payloads] == payloads
    assert [c for r in reads for c in r] == _typed(_sse(payloads))
    assert decoded == 4  # role, the first text (the real template), finish, usage


def _padded(payloads: list[bytes], paddings: list[str], amid: bool = False) -> list[bytes]:
    """``payloads`` as OpenAI sends them: each ends with its own ``"obfuscation"`` (or,
    ``amid``, as Azure does: another field follows it)."""
    after = b',"tier":"default"}' if amid else b"}"
    return [
        p[:-1] + b',"obfuscation":' + json.dumps(pad).encode() + after
        for p, pad in zip(payloads, paddings, strict=True)
    ]


paddings = st.lists(st.text(max_size=12), min_size=20, max_size=20)


@settings(max_examples=60, deadline=None)
@given(
    texts=st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=12),
    paddings=paddings,
    amid=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=4),
)
def test_openais_padding_on_every_event_still_leaves_the_texts_as_bytes(
    texts: list[str], paddings: list[str], amid: bool, cuts: list[int]
) -> None:
    """A template's padding slot takes any string, so every text delta of a stream in
    OpenAI's or Azure's shape (padded events) stays bytes."""
    payloads = _stream(texts)
    payloads = _padded(payloads, paddings[: len(payloads)], amid)
    body = _sse(payloads)
    reads, parser = _feed(body, [c % (len(body) + 1) for c in cuts])
    assert parser.done
    assert [p for r in reads for p in r.payloads] == payloads
    assert [c for r in reads for c in r] == _typed(body)
    assert sum(len(r.notable) for r in reads) == 3  # role, finish, usage


_ODD_PADDINGS = [
    b"5",
    b"",
    b'"a","b"',
    b'"a",\n"b"',
    b'"x\\"',
    b'"a"} ',
    b"null",
    b'"',
    b'"a"],["b"',
    b'"a"],\n["b"',
    b'["a"]',
    b'"a"]]',
    b'[["a",\n"b"]]',
]
_TWO_PADS = b"two pads"  # a text slot holding a second padding: "a" PAD "b"
_NO_PAD = b"no pad"  # a text delta without its padding


@settings(max_examples=200, deadline=None)
@given(
    texts=st.lists(st.text(min_size=1, max_size=5), min_size=3, max_size=10),
    paddings=paddings,
    amid=st.booleans(),
    spoils=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=20),
            st.booleans(),
            st.sampled_from([*_ODD_MIDDLES, *_ODD_PADDINGS, _TWO_PADS, _NO_PAD]),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_a_padded_run_checked_in_bulk_ends_like_one_checked_a_payload_at_a_time(
    texts: list[str], paddings: list[str], amid: bool, spoils: list[tuple[int, bool, bytes]]
) -> None:
    """``_all_padded`` against ``_fits`` for each payload: however a text or a padding
    of the run is spoilt (one payload with two paddings and another with none among
    them), the same payloads are kept, typed, or refused."""
    payloads = _padded(_stream(texts), paddings[: len(texts) + 3], amid)
    pad = b'},"logprobs":null,"finish_reason":null}],"obfuscation":'  # as _text, _padded
    assert pad in payloads[1]
    after = b',"tier":"default"}' if amid else b"}"
    for at, in_padding, middle in spoils:
        i = 1 + at % len(texts)
        if middle == _NO_PAD:
            payloads[i] = _text(texts[i - 1])
            continue
        if middle == _TWO_PADS:
            middle, in_padding = b'"a"' + pad + b'"b"', False
        if in_padding:
            head, _, _ = payloads[i].rpartition(b',"obfuscation":')
            payloads[i] = head + b',"obfuscation":' + middle + after
        else:
            padded = _padded([_text("\x00")], [paddings[i]], amid)[0]
            payloads[i] = padded.replace(b'"\\u0000"', middle)
    _assert_bulk_is_one_by_one(_sse(payloads), "_all_padded")


def test_a_padding_key_only_nested_gives_no_slot() -> None:
    """``"obfuscation"`` inside another object (here an object of its own) is no
    padding: texts varying there are decoded."""
    role = _stream([])[0]
    texts = [_text(t)[:-1] + b',"x":{"obfuscation":"' + t.encode() + b'"}}' for t in "abc"]
    payloads = [role, *texts, *_stream([])[1:]]
    reads, decoded = _decodes(payloads)
    assert [c for r in reads for c in r] == _typed(_sse(payloads))
    assert decoded == len(payloads)


def test_a_padded_run_is_taken_in_bulk() -> None:
    """With the one-payload check refused, the texts of a padded read still stay
    bytes: the bulk check took the run."""
    payloads = _padded(_stream(["a", "b", "c", "d"]), ["p", "", 'q"', "rr", "s", "t", "u"])
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr("llmfast.backends._openai_raw._fits", lambda *_: False)
        (read,), _ = _feed(_sse(payloads), [])
    assert read.payloads == payloads
    assert sorted(read.notable) == [0, 5, 6]


def test_a_padding_amid_the_fields_is_a_slot_too() -> None:
    """Azure pads its events with ``"obfuscation"`` between other top-level fields."""
    payloads = [
        p[:-1] + b',"obfuscation":' + json.dumps(pad).encode() + b',"tier":"default"}'
        for p, pad in zip(
            _stream(["a", "b", "c", "d"]), ["r", "x", "yy", 'z"\\', "", "f", "u"], strict=True
        )
    ]
    reads, decoded = _decodes(payloads)
    assert [p for r in reads for p in r.payloads] == payloads
    assert [c for r in reads for c in r] == _typed(_sse(payloads))
    assert decoded == 3  # role, finish, usage


def test_a_padding_key_also_nested_gives_no_slot() -> None:
    """Two ``"obfuscation":`` in an event (one in an object of its own): which is the
    top-level one is not told from the bytes alone, so the texts are decoded."""
    texts = [
        _text(t)[:-1] + b',"x":{"obfuscation":"n"},"obfuscation":"' + t.encode() + b'"}'
        for t in "abc"
    ]
    payloads = [_stream([])[0], *texts, *_stream([])[1:]]
    reads, decoded = _decodes(payloads)
    assert [c for r in reads for c in r] == _typed(_sse(payloads))
    assert decoded == len(payloads)


def _args(fragment: str, call: int = 0) -> bytes:
    tool = {"index": call, "function": {"arguments": fragment}}
    delta = {"tool_calls": [tool]}
    return _event([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}])


def _tool_stream(calls: list[list[str]]) -> list[bytes]:
    """A stream of tool calls: each call's start (id, name), then its arguments in
    ``calls[i]``'s fragments, then the finish."""
    payloads = []
    for i, fragments in enumerate(calls):
        function = {"name": f"f{i}", "arguments": ""}
        start: dict[str, Any] = {
            "tool_calls": [{"index": i, "id": f"call_{i}", "function": function}]
        }
        if i == 0:
            start = {"role": "assistant", "content": None, **start}
        payloads.append(
            _event([{"index": 0, "delta": start, "logprobs": None, "finish_reason": None}])
        )
        payloads += [_args(fragment, i) for fragment in fragments]
    payloads.append(_event([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]))
    return payloads


@settings(max_examples=60, deadline=None)
@given(
    calls=st.lists(st.lists(st.text(max_size=6), max_size=8), min_size=1, max_size=3),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=5),
)
def test_tool_call_arguments_stay_bytes_and_type_as_on_the_typed_path(
    calls: list[list[str]], cuts: list[int]
) -> None:
    payloads = _tool_stream(calls)
    body = _sse(payloads)
    reads, parser = _feed(body, [c % (len(body) + 1) for c in cuts])
    assert parser.done
    assert [p for r in reads for p in r.payloads] == payloads
    assert [c for r in reads for c in r] == _typed(body)
    fragments = {_args(f, i) for i, call in enumerate(calls) for f in call if f}
    for read in reads:  # whatever is left as bytes is a non-empty arguments fragment
        for i, payload in enumerate(read.payloads):
            assert i in read.notable or payload in fragments


def test_a_tool_calls_fragments_after_its_first_are_not_decoded() -> None:
    calls = [['{"city', '":"', "Paris", '"}'], ['{"n":', "1", "}"]]
    reads, decoded = _decodes(_tool_stream(calls))
    assert decoded == 5  # each call's start and first fragment, the finish
    chunks = [c for r in reads for c in r]
    arguments: dict[int, str] = {}
    for chunk in chunks:
        for call in chunk.choices[0].delta.tool_calls or []:
            if call.function is not None and call.function.arguments:
                arguments[call.index] = arguments.get(call.index, "") + call.function.arguments
    assert arguments == {0: '{"city":"Paris"}', 1: '{"n":1}'}


def _reasoning(text: str, content: str | None = None) -> bytes:
    delta = {"content": content, "reasoning_content": text}
    return _event([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}])


@settings(max_examples=60, deadline=None)
@given(
    thoughts=st.lists(st.text(max_size=6), max_size=10),
    texts=st.lists(st.text(max_size=6), max_size=10),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=5),
)
def test_reasoning_deltas_stay_bytes_and_type_as_on_the_typed_path(
    thoughts: list[str], texts: list[str], cuts: list[int]
) -> None:
    """A reasoning model's stream (DeepSeek's ``reasoning_content`` deltas, then the
    answer's text deltas)."""
    stream = _stream(texts)
    payloads = [stream[0], *map(_reasoning, thoughts), *stream[1:]]
    body = _sse(payloads)
    reads, parser = _feed(body, [c % (len(body) + 1) for c in cuts])
    assert parser.done
    assert [p for r in reads for p in r.payloads] == payloads
    assert [c for r in reads for c in r] == _typed(body)
    plain = {_reasoning(t) for t in thoughts if t} | {_text(t) for t in texts if t}
    for read in reads:  # whatever is left as bytes is a non-empty delta of one string
        for i, payload in enumerate(read.payloads):
            assert i in read.notable or payload in plain


@pytest.mark.parametrize("content", [None, ""])
def test_reasoning_then_text_decodes_one_of_each(content: str | None) -> None:
    stream = _stream(["The", " answer"])
    thoughts = [_reasoning(t, content) for t in ["Let", " me", " think"]]
    payloads = [stream[0], *thoughts, *stream[1:]]
    reads, decoded = _decodes(payloads)
    assert decoded == 5  # role, the first reasoning delta, the first text, finish, usage
    chunks = [c for r in reads for c in r]
    assert "".join(c.choices[0].delta.reasoning_content or "" for c in chunks if c.choices) == (
        "Let me think"
    )
    assert "".join(c.text for c in chunks) == "The answer"


_NOISE = [b'"', b"\\", b",", b":", b"}", b"]", b"[", b"{", b"\n", b"a", b" ", b"null", b'"x"']


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(st.text(min_size=1, max_size=4), min_size=2, max_size=8),
    paddings=paddings,
    padded=st.booleans(),
    amid=st.booleans(),
    kind=st.sampled_from(["text", "reasoning", "tool"]),
    edits=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=11),
            st.integers(min_value=0, max_value=400),
            st.integers(min_value=0, max_value=3),
            st.sampled_from(_NOISE),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_whatever_bytes_come_a_payload_kept_raw_is_a_plain_delta(
    texts: list[str],
    paddings: list[str],
    padded: bool,
    amid: bool,
    kind: str,
    edits: list[tuple[int, int, int, bytes]],
) -> None:
    """Bytes cut out of, or put into, any payload anywhere: every payload the parser
    keeps as bytes still decodes, alone, to a plain text delta of choice 0 (so
    forwarding it unchecked is forwarding a valid event), and what the parser passes
    on types to what the typed parser gives. Text, reasoning and tool-call streams."""
    payloads = _stream(texts)
    if kind == "reasoning":
        payloads = [payloads[0], *map(_reasoning, texts), *payloads[1:]]
    elif kind == "tool":
        payloads = _tool_stream([texts])
    if padded:
        payloads = _padded(payloads, paddings[: len(payloads)], amid)
    for which, at, cut, noise in edits:
        i = which % len(payloads)
        payload = payloads[i]
        at %= len(payload) + 1
        payloads[i] = payload[:at] + noise + payload[at + cut :]
    body = _sse(payloads)
    parser = RawChatStreamParser()
    try:
        events = parser.feed(body)
    except Exception:
        return  # refused at once: nothing kept
    typed = _ChatStreamParser()
    try:
        expected = typed.feed(body)
    except Exception:
        expected = []
    assert list(events) == expected
    for i, payload in enumerate(events.payloads):
        if i in events.notable:
            continue
        chunk = msgspec.json.decode(payload, type=ChatCompletionChunk)
        (choice,) = chunk.choices
        assert choice.index == 0
        assert choice.finish_reason is None
        delta = choice.delta
        assert delta.role is None
        calls = delta.tool_calls or []
        arguments = [c.function.arguments for c in calls if c.function is not None]
        strings = [delta.content, delta.reasoning_content, *arguments]
        assert len([x for x in strings if x]) == 1  # one non-empty string, nothing else
        assert len(calls) <= 1
