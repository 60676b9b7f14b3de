"""A leader whose callers all leave goes on for the processes following it, and only
for them: with nobody following (or once the last follower leaves) the cancel still
reaches the upstream. Real redis-server, real HTTP; each ``Client`` with its own
coalescing layer and store stands for a process (as in test_coalesce_redis.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from llmfast import Client, Event
from llmfast.layers import Coalesce, RedisFlightStore
from llmfast.testing import MockServer, Reply, StreamFlow

_ANSWER = "one answer for every process that asked"


class Process:
    """One client with its own coalescing layer and Redis store."""

    def __init__(self, server: MockServer, redis_url: str, namespace: str, lease: float) -> None:
        self.joined = asyncio.Event()
        self.store = RedisFlightStore(redis_url, namespace=namespace, lease=lease)
        self.client = Client(
            base_url=server.url, model="m", layers=[Coalesce(store=self.store)], on_event=self._on
        )

    def _on(self, event: Event) -> None:
        if event.name == "coalesce.join" and event.data.get("remote"):
            self.joined.set()

    async def streamed(self, prompt: str) -> str:
        async with self.client.stream(prompt, temperature=0) as stream:
            chunks: list[Any] = [chunk async for chunk in stream]
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.fixture(params=[0.3])
async def pair(
    server: MockServer, redis_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Process, Process]]:
    """Two processes; the lease (how long a follower's word lasts) is the param."""
    namespace = f"test-followers-{uuid.uuid4().hex}"
    lease: float = request.param
    a, b = (Process(server, redis_url, namespace, lease) for _ in range(2))
    try:
        yield a, b
    finally:
        await a.client.aclose()
        await b.client.aclose()


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with MockServer() as server:
        yield server


async def _cancelled(task: asyncio.Future[Any]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def _led_and_followed(
    pair: tuple[Process, Process], server: MockServer, reply: Reply
) -> tuple[StreamFlow, asyncio.Future[Any], asyncio.Future[Any]]:
    """The leader's stream in flight (held at its headers until released), and the
    follower's same call joined to it."""
    leader, follower = pair
    flow = server.watch_stream(hold=True)
    server.enqueue(reply)
    first = asyncio.ensure_future(leader.streamed("q"))
    await flow.wait_started()
    second = asyncio.ensure_future(follower.streamed("q"))
    await asyncio.wait_for(follower.joined.wait(), 5)
    return flow, first, second


async def test_a_leader_whose_caller_left_goes_on_for_its_follower(
    pair: tuple[Process, Process], server: MockServer
) -> None:
    reply = Reply.text(_ANSWER, chunk_size=4)
    flow, first, second = await _led_and_followed(pair, server, reply)
    await _cancelled(first)  # the leader's only caller leaves
    flow.release()
    assert await asyncio.wait_for(second, 5) == _ANSWER
    await flow.wait_done()
    assert not flow.disconnected
    assert server.request_count == 1  # the follower never called again


async def test_a_leader_nobody_follows_cancels_its_upstream_call(
    pair: tuple[Process, Process], server: MockServer
) -> None:
    leader, _ = pair
    flow = server.watch_stream(hold=True)
    server.enqueue(Reply.text(_ANSWER))
    first = asyncio.ensure_future(leader.streamed("q"))
    await flow.wait_started()
    await _cancelled(first)
    await flow.wait_disconnected()  # the upstream saw the call go away
    assert server.request_count == 1


@pytest.mark.parametrize("pair", [30.0], indirect=True)  # its word would last 30 s
async def test_a_follower_that_left_first_lets_the_leader_cancel(
    pair: tuple[Process, Process], server: MockServer
) -> None:
    flow, first, second = await _led_and_followed(pair, server, Reply.text(_ANSWER))
    await _cancelled(second)  # it says so in Redis on its way out
    await _cancelled(first)
    await flow.wait_disconnected(timeout=3)
    assert server.request_count == 1


async def test_a_leader_kept_for_a_follower_cancels_once_that_one_leaves(
    pair: tuple[Process, Process], server: MockServer
) -> None:
    flow, first, second = await _led_and_followed(pair, server, Reply.text(_ANSWER))
    await _cancelled(first)  # kept going: a follower waits
    assert not flow.disconnected
    await _cancelled(second)  # the leader sees nobody follows within a poll (0.1 s)
    await flow.wait_disconnected()
    assert server.request_count == 1
