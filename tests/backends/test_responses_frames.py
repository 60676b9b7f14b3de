"""The bulk framing of Responses streams gives exactly the data the exact SSE decoder
gives, whatever the framing and however the body is cut; memory stays bounded."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmfast.backends._responses_frames import Frames
from llmfast.backends.sse import SSEDecoder
from llmfast.errors import ResponseTooLargeError

_PAYLOAD = st.text(alphabet=st.sampled_from('{}":,ab 1é'), min_size=1, max_size=12)
_BLOCK = st.one_of(
    _PAYLOAD.map(lambda p: f"event: response.x\ndata: {p}\n\n"),  # the usual shape
    _PAYLOAD.map(lambda p: f"data: {p}\n\n"),
    _PAYLOAD.map(lambda p: f": comment\nevent: e\ndata: {p}\n\n"),
    _PAYLOAD.map(lambda p: f"id: 7\ndata: {p}\ndata: more\n\n"),
    _PAYLOAD.map(lambda p: f"data:{p}\n\n"),
    _PAYLOAD.map(lambda p: f"event: e\r\ndata: {p}\r\n\r\n"),
    # two-line blocks of other shapes, which the bulk check must not take for the usual
    _PAYLOAD.map(lambda p: f"data: {p}\ndata: {p}\n\n"),
    _PAYLOAD.map(lambda p: f"event: e\nevent: {p}\n\n"),
    _PAYLOAD.map(lambda p: f"event:e\ndata: {p}\n\n"),
    _PAYLOAD.map(lambda p: f"data: {p}\nevent: e\n\n"),
    _PAYLOAD.map(lambda p: f"event: e\ndata: data: {p}\n\n"),
    st.just("event: event: e\ndata\n\n"),
    st.just("\n"),
    st.just(": keep-alive\n\n"),
)


def _exact(body: bytes) -> list[str]:
    return [event.data for event in SSEDecoder().feed(body)]


@settings(max_examples=200, deadline=None)
@given(
    blocks=st.lists(_BLOCK, max_size=8),
    bom=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=30), max_size=12),
)
def test_bulk_framing_matches_the_exact_decoder(
    blocks: list[str], bom: bool, cuts: list[int]
) -> None:
    body = ("\ufeff" if bom else "").encode() + "".join(blocks).encode()
    frames = Frames()
    got: list[str] = []
    position = 0
    for size in [*cuts, len(body)]:
        fed = frames.feed(body[position : position + size])
        got.extend(data if isinstance(data, str) else data.decode() for data in fed)
        position += size
    assert got == _exact(body)


_USUAL = _PAYLOAD.map(lambda p: f"event: response.x\ndata: {p}\n\n")
_TWO_LINES = st.one_of(  # the shape the bulk check looks at, with other fields or order
    _PAYLOAD.map(lambda p: f"data: {p}\ndata: {p}\n\n"),
    _PAYLOAD.map(lambda p: f"event: e\nevent: {p}\n\n"),
    _PAYLOAD.map(lambda p: f"data: {p}\nevent: e\n\n"),
    _PAYLOAD.map(lambda p: f"id: 1\ndata: {p}\n\n"),
    _PAYLOAD.map(lambda p: f"event: e\ndata:{p}\n\n"),
)


@settings(max_examples=200, deadline=None)
@given(
    usual=st.lists(_USUAL, min_size=1, max_size=6),
    odd=_TWO_LINES,
    where=st.integers(min_value=0, max_value=6),
)
def test_one_odd_two_line_block_among_usual_ones_is_read_exactly(
    usual: list[str], odd: str, where: int
) -> None:
    blocks = [*usual[:where], odd, *usual[where:]]
    body = "".join(blocks).encode()
    got = [d if isinstance(d, str) else d.decode() for d in Frames().feed(body)]
    assert got == _exact(body)


def test_an_event_over_the_limit_raises_after_the_events_before_it() -> None:
    frames = Frames(max_event_bytes=64)
    small = b"event: e\ndata: {}\n\n"
    big = b"event: e\ndata: " + b"x" * 100 + b"\n\n"
    assert frames.feed(small + big) == [b"{}"]  # what came before, first
    with pytest.raises(ResponseTooLargeError):
        frames.feed(small)


def test_an_unfinished_event_over_the_limit_raises_without_waiting_for_its_end() -> None:
    frames = Frames(max_event_bytes=64)
    with pytest.raises(ResponseTooLargeError):
        for _ in range(10):
            frames.feed(b"data: " + b"x" * 20)
