"""Tests for the WHATWG HTML 9.2.6 event-stream decoder in ``llmfast.backends.sse``."""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmfast.backends.sse import SSEDecoder, SSEEvent, parse

BOM = b"\xef\xbb\xbf"
REPO_ROOT = Path(__file__).resolve().parents[2]


def ev(
    data: str, event: str = "message", id: str | None = None, retry: int | None = None
) -> SSEEvent:
    return SSEEvent(event, data, id, retry)


def bytewise(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


def run(chunks: Iterable[bytes]) -> tuple[list[SSEEvent], SSEDecoder]:
    """Feed ``chunks`` then close; return the events and the (closed) decoder."""
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    assert decoder.close() == []
    return events, decoder


def cut(body: bytes, points: Iterable[int]) -> list[bytes]:
    """Split ``body`` at ``points`` (duplicates give empty chunks, which must be harmless)."""
    bounds = [0, *sorted(points), len(body)]
    return [body[a:b] for a, b in itertools.pairwise(bounds)]


_EOL = re.compile(r"\r\n|\r|\n")


def reference_parse(body: bytes) -> tuple[list[SSEEvent], str | None, int | None]:
    """A literal, slow transcription of WHATWG HTML 9.2.6, used as an independent oracle.

    Decodes the whole body at once (UTF-8 decode strips one BOM, errors become U+FFFD) and
    returns the events, the last event ID string and the reconnection time.
    """
    text = body.removeprefix(BOM).decode("utf-8", "replace")
    events: list[SSEEvent] = []
    data = ""
    event_type = ""
    id_buffer: str | None = None
    last_id: str | None = None
    reconnection: int | None = None
    block_retry: int | None = None
    pos = 0
    while (eol := _EOL.search(text, pos)) is not None:  # an unterminated last line is dropped
        line = text[pos : eol.start()]
        pos = eol.end()
        if line == "":
            last_id = id_buffer
            if data:
                events.append(SSEEvent(event_type or "message", data[:-1], last_id, block_retry))
            data = event_type = ""
            block_retry = None
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            event_type = value
        elif name == "data":
            data += value + "\n"
        elif name == "id":
            if "\0" not in value:
                id_buffer = value
        elif name == "retry" and value and all(c in "0123456789" for c in value):
            reconnection = block_retry = int(value)
    return events, last_id, reconnection


# --------------------------------------------------------------------------- SSEEvent


def test_event_equality_repr_and_immutability() -> None:
    a = SSEEvent("message", "x", "1", 5)
    assert a == SSEEvent(event="message", data="x", id="1", retry=5)
    assert a != SSEEvent("message", "x", "1", None)
    assert ev("x") == SSEEvent("message", "x", None, None)
    assert repr(a) == "SSEEvent(event='message', data='x', id='1', retry=5)"
    with pytest.raises(AttributeError):
        a.data = "y"  # type: ignore[misc]
    assert hash(a) == hash(SSEEvent("message", "x", "1", 5))


# --------------------------------------------------------------------------- line ends


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"], ids=["LF", "CR", "CRLF"])
def test_each_line_terminator(eol: bytes) -> None:
    body = b"event: e" + eol + b"data: a" + eol + b"data: b" + eol + eol + b"data: c" + eol + eol
    assert parse([body]) == [ev("a\nb", event="e"), ev("c")]
    assert parse(bytewise(body)) == [ev("a\nb", event="e"), ev("c")]


def test_mixed_terminators_in_one_stream() -> None:
    body = b"data: a\rdata: b\r\ndata: c\n\r\ndata: d\r\rdata: e\n\n"
    assert parse([body]) == [ev("a\nb\nc"), ev("d"), ev("e")]


def test_crlf_split_across_feeds_is_one_line_end() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: a\r") == []
    # If the LF were a second line end, this blank line would dispatch "a" on its own.
    assert d.feed(b"\ndata: b\r") == []
    assert d.feed(b"\n") == []
    assert d.feed(b"\r") == [ev("a\nb")]
    assert d.feed(b"\n") == []  # second half of the CRLF blank line: no extra effect
    assert d.feed(b"data: c\n\n") == [ev("c")]


def test_cr_at_feed_end_followed_by_other_text() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: a\r") == []
    assert d.feed(b"data: b\r") == []
    assert d.feed(b"\r") == [ev("a\nb")]


def test_empty_feed_between_cr_and_lf_keeps_the_pair() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: a\r") == []
    assert d.feed(b"") == []
    assert d.feed(b"\ndata: b\n\n") == [ev("a\nb")]


@pytest.mark.parametrize("eol", ["\n", "\r", "\r\n"], ids=["LF", "CR", "CRLF"])
def test_only_cr_lf_crlf_split_lines(eol: str) -> None:
    # str.splitlines() would also split on all of these.
    odd = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
    body = f"data: x{odd}y{eol}{eol}".encode()
    assert parse([body]) == [ev(f"x{odd}y")]
    assert parse(bytewise(body)) == [ev(f"x{odd}y")]


# --------------------------------------------------------------------------- BOM


def test_leading_bom_is_stripped() -> None:
    assert parse([BOM + b"data: 1\n\n"]) == [ev("1")]


def test_leading_bom_split_byte_by_byte() -> None:
    d = SSEDecoder()
    assert d.feed(BOM[:1]) == []
    assert d.pending
    assert d.feed(BOM[1:2]) == []
    assert d.feed(BOM[2:]) == []
    assert not d.pending
    assert d.feed(b"d") == []
    assert d.feed(b"ata: 1\n\n") == [ev("1")]
    assert parse(bytewise(BOM + b"data: 1\n\ndata: 2\n\n")) == [ev("1"), ev("2")]


def test_only_one_bom_is_stripped() -> None:
    body = BOM + BOM + b"data: 1\n\ndata: 2\n\n"
    assert parse([body]) == [ev("2")]  # the second BOM makes "\ufeffdata" an unknown field
    assert parse(bytewise(body)) == [ev("2")]


def test_bom_later_in_stream_is_not_stripped() -> None:
    body = b"data: 1\n\n" + BOM + b"data: 2\n\ndata: 3\n\n"
    assert parse([body]) == [ev("1"), ev("3")]
    assert parse(bytewise(body)) == [ev("1"), ev("3")]


def test_partial_bom_prefix_that_is_not_a_bom_is_kept() -> None:
    # EF BB followed by something else is not a BOM: those bytes belong to the first line.
    body = b"\xef\xbbdata: 1\n\ndata: 2\n\n"
    assert parse([body]) == [ev("2")]
    assert parse(bytewise(body)) == [ev("2")]
    assert parse([b"\xef", b"\n", b"data: 3\n\n"]) == [ev("3")]


def test_close_rearms_bom_for_a_new_stream() -> None:
    d = SSEDecoder()
    assert d.feed(BOM + b"data: 1\n\n") == [ev("1")]
    assert d.close() == []
    assert d.feed(BOM + b"data: 2\n\n") == [ev("2")]


# --------------------------------------------------------------------------- fields


def test_comments_are_ignored() -> None:
    body = b": hello\n:\ndata: x\n: in between\ndata: y\n\n:data: nope\n\n"
    assert parse([body]) == [ev("x\ny")]


def test_comment_only_block_dispatches_nothing() -> None:
    d = SSEDecoder()
    assert d.feed(b": keep-alive\n\n") == []
    assert not d.pending


def test_multiline_data_joined_with_lf() -> None:
    body = b"data: YHOO\ndata: +2\ndata: 10\n\ndata: one\ndata: two\n\n"
    assert parse([body]) == [ev("YHOO\n+2\n10"), ev("one\ntwo")]


def test_data_with_empty_lines() -> None:
    assert parse([b"data:\ndata: a\ndata:\n\n"]) == [ev("\na\n")]
    assert parse([b"data:\n\n"]) == [ev("")]  # one empty data line is a non-empty buffer


def test_field_without_colon_has_empty_value() -> None:
    assert parse([b"data\n\n"]) == [ev("")]
    assert parse([b"data\ndata\n\n"]) == [ev("\n")]
    # `event` with no colon is an empty event type, so the default applies
    assert parse([b"event: x\nevent\ndata: a\n\n"]) == [ev("a")]
    assert parse([b"id: 7\n\nid\ndata: a\n\n"]) == [ev("a", id="")]


def test_only_one_leading_space_is_stripped() -> None:
    body = b"event:  e\nid:  1\ndata:  two\ndata:none\ndata:\ttab\ndata: trail  \n\n"
    assert parse([body]) == [ev(" two\nnone\n\ttab\ntrail  ", event=" e", id=" 1")]


def test_empty_event_type_means_message() -> None:
    body = b"event:\ndata: a\n\nevent: \ndata: b\n\n"
    assert parse([body]) == [ev("a"), ev("b")]


def test_event_type_resets_after_each_block() -> None:
    body = b"event: first\ndata: a\n\ndata: b\n\nevent: lost\n\ndata: c\n\n"
    assert parse([body]) == [ev("a", event="first"), ev("b"), ev("c")]


def test_id_persists_and_can_be_reset() -> None:
    body = b"id: 1\ndata: a\n\ndata: b\n\nid:\ndata: c\n\ndata: d\n\nid: 2\ndata: e\n\n"
    assert parse([body]) == [
        ev("a", id="1"),
        ev("b", id="1"),
        ev("c", id=""),
        ev("d", id=""),
        ev("e", id="2"),
    ]


def test_id_containing_nul_is_ignored() -> None:
    body = b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n"
    assert parse([body]) == [ev("a", id="1"), ev("b", id="1")]


def test_nul_in_data_is_kept() -> None:
    assert parse([b"data: a\x00b\n\n"]) == [ev("a\x00b")]


def test_retry_valid_value_is_attached_to_its_block_and_sticky() -> None:
    d = SSEDecoder()
    assert d.reconnection_time is None
    assert d.feed(b"retry: 1500\ndata: a\n\n") == [ev("a", retry=1500)]
    assert d.feed(b"data: b\n\n") == [ev("b")]  # retry belongs to its own block only
    assert d.reconnection_time == 1500
    assert d.feed(b"retry:0042\n\n") == []  # no data: no event, but the time still changes
    assert d.reconnection_time == 42
    assert d.close() == []
    assert d.reconnection_time == 42


@pytest.mark.parametrize(
    "value",
    [
        b"1000x",
        b" 1000",
        b"+5",
        b"-1",
        b"",
        b"1.5",
        b"1_000",
        "\uff11\uff12".encode(),
        "\u00b2".encode(),
    ],
)
def test_retry_that_is_not_only_ascii_digits_is_ignored(value: bytes) -> None:
    d = SSEDecoder()
    assert d.feed(b"retry: 7\nretry: " + value + b"\ndata: x\n\n") == [ev("x", retry=7)]
    assert d.reconnection_time == 7


def test_retry_beyond_int_conversion_limit_does_not_raise() -> None:
    limit: int = getattr(sys, "get_int_max_str_digits", lambda: 0)()
    digits = b"9" * (limit + 1 if limit else 5000)
    expected = None if limit else int(digits)
    d = SSEDecoder()
    assert d.feed(b"retry: " + digits + b"\ndata: x\n\n") == [ev("x", retry=expected)]
    assert d.reconnection_time == expected


def test_unknown_fields_are_ignored() -> None:
    body = b"foo: bar\nData: no\n data: no\ndata : no\njustsometext\ndata: x\n\n"
    assert parse([body]) == [ev("x")]


def test_unknown_field_only_block_dispatches_nothing() -> None:
    assert parse([b"something: ignore\n\n"]) == []


# --------------------------------------------------------------------------- dispatch


def test_dispatch_only_on_blank_line() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: a\n") == []
    assert d.pending
    assert d.feed(b"\n") == [ev("a")]
    assert not d.pending


def test_several_events_in_one_feed_keep_order() -> None:
    body = b"".join(b"data: %d\n\n" % i for i in range(20))
    assert SSEDecoder().feed(body) == [ev(str(i)) for i in range(20)]


def test_block_without_data_dispatches_nothing_but_updates_last_event_id() -> None:
    d = SSEDecoder()
    assert d.feed(b"event: e\nid: 3\n") == []
    assert d.last_event_id is None  # only updated when the block ends
    assert d.feed(b"\n") == []
    assert d.last_event_id == "3"
    assert d.feed(b"data: x\n\n") == [ev("x", id="3")]


def test_retry_only_block_dispatches_nothing() -> None:
    events, decoder = run([b"retry: 10000\n\n"])
    assert events == []
    assert decoder.reconnection_time == 10000


def test_end_of_stream_discards_unterminated_event() -> None:
    assert parse([b"data: a\n\ndata: b\n"]) == [ev("a")]
    assert parse([b"data: a\n\ndata: b"]) == [ev("a")]
    assert parse([b"data\n\ndata\ndata\n\ndata:"]) == [ev(""), ev("\n")]


def test_close_resets_state_and_keeps_last_event_id() -> None:
    d = SSEDecoder()
    assert d.feed(b"id: 1\ndata: a\n\nid: 2\nevent: e\ndata: partial\n") == [ev("a", id="1")]
    assert d.pending
    assert d.close() == []
    assert not d.pending
    assert d.last_event_id == "1"  # the unterminated block's id never took effect
    # nothing of the discarded block leaks into the next stream
    assert d.feed(b"data: b\n\n") == [ev("b", id="1")]


def test_close_discards_incomplete_line() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: a\n\ndata: b") == [ev("a")]
    assert d.pending
    assert d.close() == []
    assert not d.pending
    assert d.feed(b"\n\n") == []  # "data: b" was dropped, not continued


def test_close_forgets_pending_cr() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: a\r") == []
    assert d.close() == []
    assert d.feed(b"\ndata: b\n\n") == [ev("b")]  # the LF is a blank line of the new stream


@pytest.mark.parametrize(
    ("chunk", "pending"),
    [
        (b"", False),
        (b"da", True),
        (b"data: x\n", True),
        (b"event: e\n", True),
        (b"id: 1\n", True),
        (b"retry: 5\n", True),
        (b": comment\n", False),
        (b"data: x\n\n", False),
        (b"event: e\n\n", False),
        (b"data: x\r", True),
        (b"data: x\r\r", False),
    ],
)
def test_pending(chunk: bytes, pending: bool) -> None:
    d = SSEDecoder()
    d.feed(b"data: warm-up\n\n")
    d.feed(chunk)
    assert d.pending is pending


# --------------------------------------------------------------------------- UTF-8


def test_invalid_utf8_becomes_replacement_character() -> None:
    body = b"data: \xff\xfe ok\nevent: \xc3\n\n"
    assert parse([body]) == [ev("\ufffd\ufffd ok", event="\ufffd")]
    assert parse(bytewise(body)) == [ev("\ufffd\ufffd ok", event="\ufffd")]


def test_truncated_sequence_before_line_end() -> None:
    assert parse([b"data: \xe2\x80\ndata: b\n\n"]) == [ev("\ufffd\nb")]


def test_multibyte_character_split_across_feeds() -> None:
    body = "data: ok…我\n\n".encode()
    assert parse(bytewise(body)) == [ev("ok…我")]


# --------------------------------------------------------------------------- parse()


def test_parse_accepts_any_iterable() -> None:
    def gen() -> Iterator[bytes]:
        yield b"data: a\n"
        yield b"\ndata: b\n\n"

    assert parse(gen()) == [ev("a"), ev("b")]
    assert parse([]) == []


# --------------------------------------------------------------------------- properties

# Built from code points directly: st.characters() first builds a Unicode table, which can
# take over a second on a cold cache and trip Hypothesis' too_slow health check.
_CHARS = (
    st.one_of(st.integers(0x20, 0x7E), st.integers(0, 0x10FFFF))
    .filter(lambda cp: cp not in (0x0A, 0x0D) and not 0xD800 <= cp <= 0xDFFF)
    .map(chr)
)
_VALUES = st.one_of(
    st.lists(_CHARS, max_size=12).map("".join),
    st.sampled_from(["", " ", "  x", "\x00", "a\x00b", "1000", "12x", "\u2028", "\x85", "\ufeff"]),
)
_EOLS = st.sampled_from([b"\n", b"\r", b"\r\n"])


@st.composite
def sse_lines(draw: st.DrawFn) -> bytes:
    kind = draw(
        st.sampled_from(["data", "data", "event", "id", "retry", ":", "unknown", "nocolon", ""])
    )
    if kind == "":
        return b""
    if kind == "nocolon":
        return draw(st.sampled_from([b"data", b"event", b"id", b"retry", b"justtext"]))
    if kind == "retry":
        value = draw(st.one_of(st.text("0123456789", min_size=1, max_size=6), _VALUES))
    else:
        value = draw(_VALUES)
    if kind == ":":
        return (":" + value).encode()
    name = "foo" if kind == "unknown" else kind
    return (name + draw(st.sampled_from([":", ": "])) + value).encode()


@st.composite
def sse_bodies(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.tuples(sse_lines(), _EOLS), max_size=25))
    body = b"".join(line + eol for line, eol in lines)
    if draw(st.booleans()):
        body += draw(sse_lines())  # maybe an unterminated tail
    return (BOM if draw(st.booleans()) else b"") + body


_JUNK = st.lists(
    st.one_of(
        st.sampled_from(
            [b"\r", b"\n", b"\r\n", b":", b" ", b"data", b"event", b"id", b"retry", b"data: "]
        ),
        st.sampled_from([BOM, b"\xff", b"\xe2\x80", b"\x00", b"retry: 12", b"id: 1"]),
        st.binary(max_size=6),
    ),
    max_size=40,
).map(b"".join)


@st.composite
def split_bodies(draw: st.DrawFn, bodies: st.SearchStrategy[bytes]) -> tuple[bytes, list[bytes]]:
    body = draw(bodies)
    points = draw(st.lists(st.integers(0, len(body)), max_size=24))
    return body, cut(body, points)


@given(split_bodies(sse_bodies()))
def test_any_split_gives_the_same_events_as_whole_body(case: tuple[bytes, list[bytes]]) -> None:
    body, chunks = case
    whole, whole_decoder = run([body])
    split, split_decoder = run(chunks)
    assert split == whole
    assert split_decoder.last_event_id == whole_decoder.last_event_id
    assert split_decoder.reconnection_time == whole_decoder.reconnection_time
    assert run(bytewise(body))[0] == whole


@given(sse_bodies())
def test_matches_reference_algorithm(body: bytes) -> None:
    events, last_id, reconnection = reference_parse(body)
    got, decoder = run([body])
    assert got == events
    assert decoder.last_event_id == last_id
    assert decoder.reconnection_time == reconnection


@given(split_bodies(st.one_of(_JUNK, st.binary(max_size=200))))
def test_binary_junk_never_raises(case: tuple[bytes, list[bytes]]) -> None:
    body, chunks = case
    got, _ = run(chunks)
    assert all(type(e) is SSEEvent and isinstance(e.data, str) for e in got)
    assert got == run([body])[0]
    assert got == reference_parse(body)[0]


# --------------------------------------------------------------------------- conformance


def _conformance_dir() -> Path:
    env = os.environ.get("LLMFAST_CONFORMANCE_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "conformance"


CONFORMANCE_DIR = _conformance_dir()
_MISSING = (
    f"SSE conformance vectors not found at {CONFORMANCE_DIR} "
    "(set LLMFAST_CONFORMANCE_DIR to a directory holding check_sse.py and sse_cases.json)"
)


def _load_cases() -> list[Any]:
    cases_file = CONFORMANCE_DIR / "sse_cases.json"
    if not cases_file.is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason=_MISSING), id="missing")]
    cases = json.loads(cases_file.read_text(encoding="utf-8"))["cases"]
    return [pytest.param(case, id=case["name"]) for case in cases]


def _case_bytes(case: dict[str, Any]) -> bytes:
    if "input_b64" in case:
        return base64.b64decode(case["input_b64"])
    body: str = case["input"]
    return body.encode("utf-8")


def _normalise(event: SSEEvent | dict[str, Any]) -> dict[str, Any]:
    # Same normalisation as check_sse.py's default mode: id None and "" compare equal.
    if isinstance(event, SSEEvent):
        event = msgspec.structs.asdict(event)
    return {
        "event": event.get("event") or "message",
        "data": event["data"],
        "id": event.get("id") or None,
        "retry": event.get("retry"),
    }


def chunkings_of(case: dict[str, Any], body: bytes) -> dict[str, list[bytes]]:
    """The ways a conformance case is fed: whole, byte by byte, and as its source cut it."""
    chunkings = {"whole": [body], "byte-by-byte": bytewise(body)}
    if case.get("chunks"):
        chunkings["source"] = [c.encode("utf-8") for c in case["chunks"]]
    return chunkings


@pytest.mark.parametrize("case", _load_cases())
def test_conformance_case(case: dict[str, Any]) -> None:
    body = _case_bytes(case)
    want = [_normalise(e) for e in case["expected"]]
    chunkings = chunkings_of(case, body)
    for label, chunks in chunkings.items():
        got, decoder = run(chunks)
        assert [_normalise(e) for e in got] == want, label
        if "reconnection_time" in case:
            assert decoder.reconnection_time == case["reconnection_time"], label


@pytest.mark.parametrize("case", _load_cases())
def test_conformance_case_through_the_fast_path(case: dict[str, Any]) -> None:
    # feed_payloads() hands plain events over as raw bytes (no id: compared on the decoder).
    body = _case_bytes(case)
    want = [(e["event"], e["data"], e["retry"]) for e in map(_normalise, case["expected"])]
    chunkings = chunkings_of(case, body)
    _, reference = run([body])
    for label, chunks in chunkings.items():
        decoder = SSEDecoder()
        got = []
        for chunk in chunks:
            for item in decoder.feed_payloads(chunk):
                if isinstance(item, bytes):
                    item = SSEEvent("message", item.decode("utf-8", "replace"))
                got.append((item.event, item.data, item.retry))
        assert got == want, label
        assert decoder.last_event_id == reference.last_event_id, label
        assert decoder.reconnection_time == reference.reconnection_time, label


def test_conformance_checker_script() -> None:
    script = CONFORMANCE_DIR / "check_sse.py"
    if not script.is_file():
        pytest.skip(_MISSING)
    n_cases = len(json.loads((CONFORMANCE_DIR / "sse_cases.json").read_text("utf-8"))["cases"])
    proc = subprocess.run(
        [sys.executable, str(script), "llmfast.backends.sse:parse"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    last = proc.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"(\d+) passed, (\d+) failed", last)
    assert match is not None, output
    assert (int(match[1]), int(match[2])) == (n_cases, 0), output
    assert last == f"{n_cases} passed, 0 failed"
