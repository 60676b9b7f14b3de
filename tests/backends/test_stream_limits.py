"""Bounded memory while reading streams, and the SSE decoder's fast path.

``PoolConfig.max_event_bytes`` caps one SSE event / NDJSON line inside the I/O-free
decoders (``ResponseTooLargeError``, a ``DecodeError``); ``SSEDecoder.feed_payloads``
must mean exactly what ``feed`` means, however the stream is cut.
"""

from __future__ import annotations

import resource

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import llmfast
from llmfast import Client, PoolConfig
from llmfast.backends.ndjson import NDJSONDecoder
from llmfast.backends.sse import SSEDecoder, SSEEvent
from llmfast.errors import DecodeError, ResponseTooLargeError, StreamInterruptedError
from llmfast.testing import MockServer, Reply
from tests.backends.test_sse import cut, split_bodies, sse_bodies

PROVIDERS = ["openai", "anthropic", "ollama", "gemini"]


def as_events(decoder: SSEDecoder, chunks: list[bytes]) -> list[SSEEvent]:
    """``feed_payloads`` with each raw payload turned back into the event it stands for."""
    events: list[SSEEvent] = []
    for chunk in chunks:
        for item in decoder.feed_payloads(chunk):
            if isinstance(item, bytes):
                item = SSEEvent("message", item.decode("utf-8", "replace"), None, None)
            events.append(item)
    decoder.close()
    return events


def without_ids(events: list[SSEEvent]) -> list[tuple[str, str, int | None]]:
    # A raw payload carries no id; the last event id is compared on the decoder instead.
    return [(e.event, e.data, e.retry) for e in events]


def exact(chunks: list[bytes], limit: int | None = None) -> tuple[list[SSEEvent], SSEDecoder]:
    decoder = SSEDecoder(limit)
    events = [e for chunk in chunks for e in decoder.feed(chunk)]
    decoder.close()
    return events, decoder


# --------------------------------------------------------------------------- fast path


@given(split_bodies(sse_bodies()))
def test_feed_payloads_means_what_feed_means(case: tuple[bytes, list[bytes]]) -> None:
    body, chunks = case
    want, reference = exact([body])
    fast = SSEDecoder()
    assert without_ids(as_events(fast, chunks)) == without_ids(want)
    assert fast.last_event_id == reference.last_event_id
    assert fast.reconnection_time == reference.reconnection_time


@given(
    st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b""))),
    st.lists(st.integers(0, 2000), max_size=6),
)
def test_plain_events_come_out_raw_under_any_cut(payloads: list[bytes], points: list[int]) -> None:
    body = b"".join(b"data: " + p + b"\n\n" for p in payloads)
    decoder = SSEDecoder()
    chunks = cut(body, points)
    items = [i for chunk in chunks for i in decoder.feed_payloads(chunk)]
    texts = [i.decode("utf-8", "replace") if isinstance(i, bytes) else i.data for i in items]
    assert texts == [p.decode("utf-8", "replace") for p in payloads]
    if len(chunks) == 1 and not body.startswith(b"data: \xef\xbb\xbf"):
        assert all(isinstance(i, bytes) for i in items)  # one slice: all on the fast path


def test_fast_path_hands_anything_else_to_the_exact_decoder() -> None:
    decoder = SSEDecoder()
    body = b"data: 1\n\n: ping\n\nid: 7\ndata: 2\n\ndata: 3\ndata: 4\n\ndata: 5\n\n"
    items = decoder.feed_payloads(body)
    # From the first event it cannot take, the rest of the slice goes to the exact decoder.
    assert items == [b"1", *(SSEEvent("message", d, "7") for d in ("2", "3\n4", "5"))]
    assert decoder.feed_payloads(b"data: 6\n\n") == [b"6"]  # the next slice: fast again
    assert decoder.feed_payloads(b"data: 7\r\n\r\n") == [SSEEvent("message", "7", "7")]
    # A BOM mid-stream is not skipped: "\ufeffdata" is an unknown field.
    assert decoder.feed_payloads(b"\xef\xbb\xbfdata: x\n\n") == []
    fresh = SSEDecoder()
    assert fresh.feed_payloads(b"\xef\xbb\xbfdata: x\n\n") == [b"x"]  # the stream's BOM


def test_an_event_split_across_reads_rejoins_the_fast_path() -> None:
    decoder = SSEDecoder()
    assert decoder.feed_payloads(b'data: {"a"') == []
    assert decoder.feed_payloads(b":1}\n\ndata: 2\n\n") == [SSEEvent("message", '{"a":1}'), b"2"]


# --------------------------------------------------------------------------- limits


@given(
    st.integers(1, 64),
    st.lists(st.integers(0, 100), max_size=4),
    st.lists(st.binary(max_size=80).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b""))),
)
# found by hypothesis: the read ends an event left open by the one before, the next
# event is too large, and a small one follows it in the same read (it must not go out)
@example(24, [57], [b"", b"\0" * 3, b"\0" * 5, b"\0" * 18, b"\0" * 19, b""])
def test_sse_limit_is_exact_and_loses_no_earlier_event(
    limit: int, points: list[int], values: list[bytes]
) -> None:
    body = b"".join(b"data: " + v + b"\n\n" for v in values)
    fits = list(values)
    # Too big: the line "data: <value>" is longer than the limit.
    first_big = next((i for i, v in enumerate(values) if len(v) + 6 > limit), None)
    for method in ("feed", "feed_payloads"):
        decoder = SSEDecoder(limit)
        got: list[bytes] = []
        error = None
        try:
            for chunk in cut(body, points):
                items = getattr(decoder, method)(chunk)
                got += [i if isinstance(i, bytes) else i.data.encode() for i in items]
            decoder.close()
        except ResponseTooLargeError as exc:
            error = exc
        want = fits if first_big is None else fits[:first_big]
        assert [g.decode("utf-8", "replace") for g in got] == [
            w.decode("utf-8", "replace") for w in want
        ], method
        assert (error is None) == (first_big is None), method
        if error is not None:
            assert isinstance(error, DecodeError)
            assert error.limit == limit
            assert "max_event_bytes" in str(error)


def test_sse_limit_counts_every_data_line_of_one_event() -> None:
    decoder = SSEDecoder(max_event_bytes=12)
    assert decoder.feed(b"data: 1234\n") == []  # data buffer: 5 bytes
    assert decoder.feed(b"data: 5678\n") == []  # 10
    with pytest.raises(ResponseTooLargeError):
        decoder.feed(b"data: 90\n")  # 13 bytes: one too many
    with pytest.raises(ResponseTooLargeError):  # the error sticks until close()
        decoder.feed(b"\n")
    assert decoder.close() == []  # close() clears it: the decoder can be reused
    assert decoder.feed(b"data: ok\n\n") == [SSEEvent("message", "ok")]


def test_sse_never_ending_line_is_stopped_with_bounded_buffering() -> None:
    decoder = SSEDecoder(max_event_bytes=1 << 20)
    decoder.feed(b"data: ")
    read = b"x" * 16384
    with pytest.raises(ResponseTooLargeError):
        for _ in range(1000):  # 16 MB if nothing stopped it
            decoder.feed(read)
    assert not decoder.pending  # what was buffered is dropped


@pytest.mark.parametrize("method", ["feed", "feed_payloads"])
def test_a_long_line_is_kept_as_its_reads_and_joined_once(method: str) -> None:
    # What makes decoding linear (timed in benchmarks/long_line.py): the reads of an
    # unfinished line are kept as they came, not re-copied into one buffer per read.
    decoder = SSEDecoder(None)
    feed = getattr(decoder, method)
    read = b"a" * 16384
    assert feed(b"data: ") == []
    for _ in range(256):
        assert feed(read) == []
    assert sum(part is read for part in decoder._parts) == 256  # the very objects fed
    (event,) = feed(b"\n\n")
    assert isinstance(event, SSEEvent)
    assert event.data == "a" * (256 * 16384)
    assert not decoder._parts


@given(
    st.integers(1, 64),
    st.lists(st.integers(0, 100), max_size=4),
    st.lists(st.binary(min_size=1, max_size=80).map(lambda b: b.replace(b"\n", b"") or b"0")),
)
def test_ndjson_limit_is_exact_and_loses_no_earlier_line(
    limit: int, points: list[int], lines: list[bytes]
) -> None:
    body = b"".join(line + b"\n" for line in lines)
    decoder = NDJSONDecoder[bytes](bytes, max_line_bytes=limit)
    got: list[bytes] = []
    error = None
    try:
        for chunk in cut(body, points):
            got += decoder.feed_lines(chunk)
        got += decoder.close_lines()
    except ResponseTooLargeError as exc:
        error = exc
    first_big = next((i for i, v in enumerate(lines) if len(v) > limit), None)
    visible = [v for v in lines if not v.isspace()]
    if first_big is None:
        assert error is None
        assert got == visible
    else:
        assert error is not None
        assert error.limit == limit
        assert got == [v for v in lines[:first_big] if not v.isspace()]


def test_ndjson_never_ending_line() -> None:
    decoder = NDJSONDecoder[bytes](bytes, max_line_bytes=100_000)
    with pytest.raises(ResponseTooLargeError, match="max_line_bytes=100000"):
        for _ in range(1000):
            decoder.feed_lines(b"x" * 16384)
    assert not decoder.pending


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_event_bytes"):
        SSEDecoder(0)
    with pytest.raises(ValueError, match="max_line_bytes"):
        NDJSONDecoder(max_line_bytes=0)
    with pytest.raises(llmfast.ConfigurationError):
        PoolConfig(max_event_bytes=0)
    assert PoolConfig().max_event_bytes == 16 * 1024 * 1024


# --------------------------------------------------------------------------- end to end


def _client(server: MockServer, provider: str, limit: int) -> Client:
    key = None if provider == "ollama" else "test-key"
    backend = llmfast.backend_for(
        provider, base_url=server.url_for(provider), api_key=key, model="m"
    )
    return Client(backend, pool=PoolConfig(max_event_bytes=limit))


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_never_ending_event_ends_the_stream_in_a_typed_error(provider: str) -> None:
    async with MockServer() as server:
        server.enqueue(Reply.endless(), Reply.endless(after_chunks=6))
        async with _client(server, provider, 1 << 20) as client:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            with pytest.raises(ResponseTooLargeError) as caught:
                async with client.stream("one two three four five") as stream:
                    async for _ in stream:
                        pass
            assert caught.value.limit == 1 << 20
            with pytest.raises(StreamInterruptedError) as interrupted:
                async with client.stream("one two three four five") as stream:
                    async for _ in stream:
                        pass
            assert isinstance(interrupted.value.__cause__, ResponseTooLargeError)
            assert interrupted.value.chunks  # what came before the endless event is kept
            grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
            assert grown_kib < 64 * 1024  # a 1 MiB limit: nowhere near an unbounded heap
            await server.wait_open_connections(0)  # the endless connections were closed
