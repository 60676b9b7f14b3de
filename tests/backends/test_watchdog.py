"""The stream watchdogs of one loop share one timer: each stream still gets its own
first-chunk and idle limits, whatever the others' are, and nothing stays behind."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import weakref

import pytest

import llmfast
from llmfast import Client, Timeouts
from llmfast.backends import watchdog
from llmfast.sweeper import sweeper_of
from llmfast.testing import MockServer, Reply

SLACK = 0.15  # the scheduler's slack allowed past a limit on this shared machine


async def _collect(client: Client) -> tuple[str | None, float]:
    started = time.monotonic()
    async with client.stream("a b c d e f g h") as stream:
        completion = await stream.collect()
    return completion.text, time.monotonic() - started


async def _stalled(client: Client) -> tuple[BaseException, float]:
    started = time.monotonic()
    with pytest.raises(llmfast.LLMFastError) as caught:
        async with client.stream("x y z") as stream:
            await stream.collect()
    return caught.value, time.monotonic() - started


async def test_a_stalled_stream_times_out_while_a_slow_one_beside_it_lives() -> None:
    # The slow stream takes longer than the idle limit in all, but never that long
    # between two events: only the stalled one may time out.
    async with (
        MockServer() as server,
        Client(base_url=server.url, model="m", timeouts=Timeouts(idle=0.3), layers=[]) as client,
    ):
        server.enqueue(Reply.stall(after_chunks=1))
        server.enqueue(Reply.text("a b c d e f g h", token_delay=0.06))
        stalled, slow = await asyncio.gather(_stalled(client), _collect(client))
    error, waited = stalled
    assert type(error.__cause__) is llmfast.IdleTimeout
    assert 0.3 <= waited < 0.3 + SLACK
    text, took = slow
    assert text == "a b c d e f g h"
    assert took > 0.3  # longer than one idle limit: its events kept it alive


async def test_a_shorter_limit_than_the_timer_set_is_still_kept() -> None:
    # A stream with a long limit sets the shared timer far ahead; one that starts
    # after it with a short limit must not wait for that timer.
    async with (
        MockServer() as server,
        Client(base_url=server.url, model="m", timeouts=Timeouts(idle=30), layers=[]) as patient,
        Client(
            base_url=server.url, model="m", timeouts=Timeouts(first_chunk=0.2, idle=0.4), layers=[]
        ) as hasty,
    ):
        server.enqueue(Reply.stall(after_chunks=1))
        async with patient.stream("x y z") as long_one:
            chunks = aiter(long_one)
            await anext(chunks)  # its watchdog is set, 30 s ahead
            server.enqueue(Reply.stall(after_chunks=0))
            error, waited = await _stalled(hasty)
            assert type(error) is llmfast.FirstChunkTimeout
            assert 0.2 <= waited < 0.2 + SLACK
            assert len(long_one.chunks) == 1  # still open, its own limit far off


async def test_ended_streams_leave_no_watchdog_behind() -> None:
    async with (
        MockServer() as server,
        Client(base_url=server.url, model="m", timeouts=Timeouts(idle=5), layers=[]) as client,
    ):
        sweeper = sweeper_of(asyncio.get_running_loop())
        async with contextlib.AsyncExitStack() as open_streams:
            for _ in range(3):
                server.enqueue(Reply.stall(after_chunks=1))
                stream = await open_streams.enter_async_context(client.stream("x y z"))
                await anext(aiter(stream))  # open, and stalled after its first chunk
            texts = await asyncio.gather(*(_collect(client) for _ in range(5)))
            assert [text for text, _ in texts] == ["a b c d e f g h"] * 5
            assert len(sweeper.watched) == 3  # the stalled ones, inside their limit
        assert not sweeper.watched  # closed: unwatched


def test_a_finished_loop_is_not_kept_alive() -> None:
    async def watch_once() -> weakref.ref[asyncio.AbstractEventLoop]:
        stream_watchdog = watchdog.StreamWatchdog(lambda: None, first_chunk_at=None, idle=60)
        stream_watchdog.cancel()
        return weakref.ref(asyncio.get_running_loop())

    loop_ref = asyncio.run(watch_once())  # its sweeper's timer is still set, 60 s ahead
    gc.collect()
    assert loop_ref() is None


def test_a_loop_closed_with_a_stream_still_watched_is_let_go() -> None:
    async def leave_watched() -> weakref.ref[asyncio.AbstractEventLoop]:
        watchdog.StreamWatchdog(lambda: None, first_chunk_at=None, idle=60)  # not cancelled
        return weakref.ref(asyncio.get_running_loop())

    loop_ref = asyncio.run(leave_watched())  # never cancelled: still in its sweeper
    asyncio.run(leave_watched())  # the next loop's first watchdog lets the closed one go
    gc.collect()
    assert loop_ref() is None
