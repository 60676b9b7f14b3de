"""The incremental NDJSON decoder: any split of the bytes gives the same objects."""

from __future__ import annotations

import itertools
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llmfast
from llmfast.backends.ndjson import NDJSONDecoder, parse

_encode = msgspec.json.encode

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=20),  # any text: multi-byte characters, escaped newlines
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
objects = st.dictionaries(st.text(max_size=8), json_values, max_size=5)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@st.composite
def bodies(draw: st.DrawFn) -> tuple[list[dict[str, Any]], bytes]:
    """Objects and a body holding them: LF or CRLF ends, blank lines, maybe no final newline."""
    items = draw(st.lists(objects, max_size=6))
    out = bytearray()
    for item in items:
        out += draw(st.sampled_from([b"", b"\n", b"\r\n", b"  \n"]))  # blank lines
        out += _encode(item) + draw(st.sampled_from([b"\n", b"\r\n"]))
    trailing_newline = draw(st.booleans())
    if items and not trailing_newline:
        out = out.rstrip(b"\r\n")  # a final line without its newline
    return items, bytes(out)


@settings(max_examples=100, deadline=None)
@given(bodies(), st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_any_split_gives_the_same_objects(case: tuple[list[Any], bytes], cuts: list[int]) -> None:
    items, body = case
    assert parse([body]) == items
    assert parse(_split(body, cuts)) == items


@settings(max_examples=40, deadline=None)
@given(bodies())
def test_byte_by_byte(case: tuple[list[Any], bytes]) -> None:
    items, body = case
    assert parse([body[i : i + 1] for i in range(len(body))]) == items


def test_feed_returns_only_completed_lines() -> None:
    decoder: NDJSONDecoder[Any] = NDJSONDecoder()
    assert decoder.feed(b'{"a": 1}\n{"b"') == [{"a": 1}]
    assert decoder.pending
    assert decoder.feed(b": 2") == []
    assert decoder.feed(b"}\r\n\n   \n") == [{"b": 2}]
    assert not decoder.pending
    assert decoder.feed(b'{"c": "\xc3') == []  # a UTF-8 character split across reads
    assert decoder.feed(b'\xa9"}') == []
    assert decoder.close() == [{"c": "é"}]
    assert decoder.close() == []  # reset


def test_typed_decoding() -> None:
    class Line(msgspec.Struct):
        n: int

    decoder = NDJSONDecoder(msgspec.json.Decoder(Line).decode)
    assert decoder.feed(b'{"n": 1}\n{"n": 2}\n') == [Line(1), Line(2)]
    with pytest.raises(llmfast.DecodeError, match="malformed NDJSON line"):
        decoder.feed(b'{"n": "x"}\n')


def test_malformed_line_raises_decode_error() -> None:
    decoder: NDJSONDecoder[Any] = NDJSONDecoder()
    with pytest.raises(llmfast.DecodeError, match=r"line starts b'\{not json\}'"):
        decoder.feed(b"{not json}\n")
    decoder.feed(b"{trailing")
    with pytest.raises(llmfast.DecodeError):
        decoder.close()


def test_lines_without_decoding() -> None:
    decoder: NDJSONDecoder[Any] = NDJSONDecoder()
    assert decoder.feed_lines(b"one\n\r\ntwo\r\nthr") == [b"one", b"two\r"]
    assert decoder.close_lines() == [b"thr"]
