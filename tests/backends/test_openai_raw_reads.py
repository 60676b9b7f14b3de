"""How the raw parser takes a network read in: whole one-line events by their lines
(and the read itself forwarded when it held nothing else), any other read through the
exact decoder, with the same chunks, lines and forwarded events either way."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmfast.backends._openai_raw import RawChatStreamParser
from llmfast.backends.openai import _ChatStreamParser
from llmfast.backends.sse import SSEDecoder
from llmfast.errors import StreamTruncatedError
from llmfast.raw_events import RawEvents
from tests.backends.test_openai_raw import _event, _feed, _sse, _stream, _text, _typed

_DONE = b"data: [DONE]\n\n"


def _forwarded(reads: list[RawEvents]) -> bytes:
    """What the reads forward: each one's events, and the end marker after the last."""
    return b"".join(r.sse(_DONE if r.end else b"") for r in reads)


def _data_events(body: bytes) -> list[str]:
    """The data of ``body``'s message events up to ``[DONE]``, as the exact decoder reads it."""
    out = []
    for event in SSEDecoder().feed(body):
        if event.data == "[DONE]":
            break
        if event.event == "message":
            out.append(event.data)
    return out


def test_a_read_of_whole_events_is_forwarded_as_itself() -> None:
    body = _sse(_stream(["a", "b", "c"]))
    (read,), _ = _feed(body, [])
    assert read.sse(_DONE) is body  # no copy: the read is the answer's bytes
    assert read.sse() == body.removesuffix(_DONE)
    cut = _sse(_stream(["a", "b"], usage=False, finish=False), done=False)
    read = RawChatStreamParser().feed(cut)  # a read amid the stream
    assert read.sse() is cut
    assert read.sse(_DONE) == cut + _DONE


@pytest.mark.parametrize(
    "other",
    [b": ping\n\n", b"id: 7\n\n", b"retry: 300\n\n", b"event: noise\n\n", b"\n\n"],
)
def test_a_line_that_is_no_data_field_sends_the_read_the_exact_way(other: bytes) -> None:
    payloads = _stream(["a", "b", "c", "d"])
    body = _sse(payloads[:3]).removesuffix(_DONE) + other + _sse(payloads[3:])
    reads, parser = _feed(body, [])
    assert parser.done
    assert [p for r in reads for p in r.payloads] == payloads
    assert [c for r in reads for c in r] == _typed(body)
    assert sum(len(r.notable) for r in reads) == 3  # the texts still stay bytes
    assert _forwarded(reads) == _sse(payloads)  # the line that held no event left out


def test_a_done_without_its_space_is_still_the_end() -> None:
    payloads = _stream(["a"])
    body = _sse(payloads, done=False) + b"data:[DONE]\n\n" + b"data: " + _text("late") + b"\n\n"
    (read,), parser = _feed(body, [])
    assert parser.done
    assert read.end
    assert read.payloads == payloads


def test_an_event_of_several_data_lines_is_forwarded_as_several() -> None:
    payloads = _stream(["a", "b"])
    spread = payloads[2].replace(b',"model"', b',\n"model"')  # JSON with an LF between fields
    body = b"".join(b"data: " + p + b"\n\n" for p in payloads[:2])
    body += b"data: " + spread.replace(b"\n", b"\ndata: ") + b"\n\n"
    body += _sse(payloads[3:])
    reads, _ = _feed(body, [])
    assert [c for r in reads for c in r] == _typed(body)
    assert [p for r in reads for p in r.payloads] == [*payloads[:2], spread, *payloads[3:]]
    forwarded = _forwarded(reads)
    assert _data_events(forwarded) == _data_events(body)  # valid SSE, the same data


def test_a_mended_payload_is_forwarded_mended() -> None:
    payloads = _stream(["a", "b"])
    broken = _event([{"index": 0, "delta": {}, "finish_reason": "stop"}], system_fingerprint="x")
    payloads[3] = broken.replace(b'"x"', b'"\xff"')  # invalid UTF-8: replaced, as typed
    body = _sse(payloads)
    (read,), _ = _feed(body, [])
    assert read.sse(_DONE) != body
    assert "\ufffd".encode() in read.sse(_DONE)
    assert list(read) == _typed(body)


_OTHER = st.sampled_from([b": ping\n\n", b"id: 3\n\n", b"event: x\n\n", b"data:tight\n\n"])


@settings(max_examples=150, deadline=None)
@given(
    texts=st.lists(st.text(min_size=1, max_size=4), min_size=1, max_size=8),
    others=st.lists(st.tuples(st.integers(min_value=0, max_value=20), _OTHER), max_size=3),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=5),
)
def test_whatever_lines_come_between_events_and_however_cut(
    texts: list[str], others: list[tuple[int, bytes]], cuts: list[int]
) -> None:
    """Comments, ``id`` and named events between the events, and reads cut anywhere:
    the chunks are the typed parser's, and what is forwarded reads (by the exact
    decoder) as the upstream's data events."""
    events = [b"data: " + p + b"\n\n" for p in _stream(texts)]
    for at, other in others:
        events.insert(at % (len(events) + 1), other)
    body = b"".join(events) + _DONE
    try:
        expected = _typed(body)
    except Exception:  # "data:tight" is an event the typed parser refuses too
        with pytest.raises(Exception):  # noqa: B017, PT011 - the same refusal, whichever
            _feed(body, [c % (len(body) + 1) for c in cuts])
        return
    reads, parser = _feed(body, [c % (len(body) + 1) for c in cuts])
    assert parser.done
    assert [c for r in reads for c in r] == expected
    assert _data_events(_forwarded(reads)) == _data_events(body)


def test_a_stream_cut_after_the_text_that_gave_the_template_says_which_choice() -> None:
    """No role event: the first text gives the template (and is not notable), yet its
    choice counts as opened, so the cut stream's error is the typed parser's own."""
    body = _sse([_text("a"), _text("b")])
    raw = RawChatStreamParser()
    raw.feed(body)
    typed = _ChatStreamParser()
    typed.feed(body)
    with pytest.raises(StreamTruncatedError) as raw_error:
        raw.close()
    with pytest.raises(StreamTruncatedError) as typed_error:
        typed.close()
    assert str(raw_error.value) == str(typed_error.value)
    assert "choice 0" in str(raw_error.value)


@pytest.mark.parametrize("padded", [False, True])
def test_a_live_stream_read_an_event_at_a_time(padded: bool) -> None:
    """Each read one event (as a live stream comes): every text delta is kept as the
    read itself, the chunks are the typed parser's, and as many are decoded as when
    the stream comes in one read."""
    payloads = _stream(["a", "b", "c", "d", "e"])
    if padded:
        payloads = [
            p[:-1] + b',"obfuscation":"x' + bytes([97 + i]) + b'"}' for i, p in enumerate(payloads)
        ]
    body = _sse(payloads)
    parser = RawChatStreamParser()
    reads = [parser.feed(b"data: " + p + b"\n\n") for p in payloads] + [parser.feed(_DONE)]
    parser.close()
    assert [c for r in reads for c in r] == _typed(body)
    assert [r.sse() for r in reads[:-1]] == [b"data: " + p + b"\n\n" for p in payloads]
    texts = reads[1:6]
    assert all(not r.notable for r in texts)
    assert all(r.sse() is r._read for r in texts)  # no copy
    (whole,), _ = _feed(body, [])
    assert sum(len(r.notable) for r in reads) == len(whole.notable) == 3
