"""``SSEDecoder.feed_lines``: a slice of whole one-line events cut into its lines; any
other slice refused (``None``), to go to ``feed_payloads`` with nothing changed."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmfast.backends.sse import SSEDecoder, SSEEvent
from llmfast.errors import ResponseTooLargeError
from tests.backends.test_sse import _case_bytes, _load_cases, _normalise, chunkings_of


def _events_of(decoder: SSEDecoder, chunk: bytes) -> list[tuple[str, str, int | None]]:
    """The events of ``chunk`` as a caller of ``feed_lines`` takes them: from the lines
    when each is a ``data:`` field, else (as documented) through ``feed_payloads``."""
    lines = decoder.feed_lines(chunk)
    if lines is not None and all(line.startswith(b"data: ") for line in lines):
        return [("message", line[6:-1].decode("utf-8", "replace"), None) for line in lines]
    out = []
    for item in decoder.feed_payloads(chunk):
        if isinstance(item, bytes):
            item = SSEEvent("message", item.decode("utf-8", "replace"))
        out.append((item.event, item.data, item.retry))
    return out


@pytest.mark.parametrize("case", _load_cases())
def test_conformance_case_through_the_lines(case: dict[str, Any]) -> None:
    body = _case_bytes(case)
    want = [(e["event"], e["data"], e["retry"]) for e in map(_normalise, case["expected"])]
    chunkings = chunkings_of(case, body)
    for label, chunks in chunkings.items():
        decoder = SSEDecoder()
        got = [event for chunk in chunks for event in _events_of(decoder, chunk)]
        assert got == want, label


def test_whole_one_line_events_come_as_their_lines() -> None:
    body = b'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n'
    lines = [b'data: {"a":1}\n', b'data: {"b":2}\n', b"data: [DONE]\n"]
    assert SSEDecoder().feed_lines(body) == lines
    # a line that is no data field is the caller's to refuse (a lone blank line here)
    assert SSEDecoder().feed_lines(b"data: a\n\n\n\n") == [b"data: a\n", b"\n"]


@pytest.mark.parametrize(
    "body",
    [
        b"data: a\r\n\r\n",  # CR line ends
        b"data: a\n\ndata: b",  # the last event goes on in the next slice
        b"data: a\n\ndata: b\n",
        b"data: a\ndata: b\n\n",  # an event of two lines
        b"event: x\ndata: a\n\n",
        b": ping\n\ndata: a\n\n",  # (a slice that starts otherwise)
        b"",
    ],
)
def test_any_other_slice_is_refused(body: bytes) -> None:
    assert SSEDecoder().feed_lines(body) is None


def test_a_decoder_midway_through_an_event_refuses() -> None:
    decoder = SSEDecoder()
    assert decoder.feed_payloads(b"data: a") == []
    assert decoder.feed_lines(b"\n\ndata: b\n\n") is None  # the rest of "a" comes first
    first, second = decoder.feed_payloads(b"\n\ndata: b\n\n")
    assert isinstance(first, SSEEvent)
    assert first.data == "a"
    assert second == b"b"


def test_a_slice_of_one_event_comes_as_its_line() -> None:
    assert SSEDecoder().feed_lines(b'data: {"a":1}\n\n') == [b'data: {"a":1}\n']
    assert SSEDecoder().feed_lines(b"data: a\ndata: b\n\n") is None
    assert SSEDecoder(max_event_bytes=7).feed_lines(b"data: a\n\n") == [b"data: a\n"]
    assert SSEDecoder(max_event_bytes=6).feed_lines(b"data: a\n\n") is None


@pytest.mark.parametrize("first", [b"data: x\n\n", b"data: x\n\ndata: w\n\n"])
def test_after_the_first_lines_a_bom_is_no_longer_the_streams_start(first: bytes) -> None:
    decoder = SSEDecoder()
    assert decoder.feed_lines(first) is not None
    # only the stream's first bytes may be a BOM; later, it begins a field name (unknown)
    assert decoder.feed_payloads(b"\xef\xbb\xbfdata: y\n\n") == []


def test_a_slice_with_an_event_over_the_limit_is_refused() -> None:
    assert SSEDecoder(max_event_bytes=8).feed_lines(b"data: 123456789\n\n") is None
    assert SSEDecoder(max_event_bytes=15).feed_lines(b"data: 123456789\n\n") is not None
    many = b"data: 12345\n\n" * 10  # a slice over the limit, each event within it
    assert SSEDecoder(max_event_bytes=11).feed_lines(many) == [b"data: 12345\n"] * 10
    with pytest.raises(ResponseTooLargeError):
        SSEDecoder(max_event_bytes=10).feed_payloads(many)


_LINE = st.one_of(
    st.text(alphabet='ab {}":,', max_size=6).map(lambda t: "data: " + t),
    st.sampled_from([": ping", "id: 7", "retry: 5", "event: x", "data:tight", "data", "x: y"]),
)


@settings(max_examples=300, deadline=None)
@given(
    blocks=st.lists(st.lists(_LINE, min_size=1, max_size=3), max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=4),
)
def test_lines_or_payloads_give_what_the_exact_decoder_gives(
    blocks: list[list[str]], cuts: list[int]
) -> None:
    """However a stream's blocks are made and cut, taking each slice's lines when
    ``feed_lines`` gives them (and each is a ``data:`` line), else its
    ``feed_payloads``, gives the exact decoder's events and last event id."""
    body = "".join("\n".join(block) + "\n\n" for block in blocks).encode()
    points = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    chunks = [body[a:b] for a, b in itertools.pairwise(points)]
    reference = SSEDecoder()
    want = [(e.event, e.data, e.retry) for chunk in chunks for e in reference.feed(chunk)]
    decoder = SSEDecoder()
    got = [event for chunk in chunks for event in _events_of(decoder, chunk)]
    assert got == want
    assert decoder.last_event_id == reference.last_event_id
