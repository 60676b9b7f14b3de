"""Coalescing shared across processes through a real redis-server, over real HTTP.

Each ``Client`` here has its own coalescing layer and store, as a separate process
would; the takeover test kills a real leader process, and tests/gateway/test_shared_limits.py
runs two gateway processes.
Every test uses its own namespace, so they share the session's redis-server safely.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

import llmfast
from llmfast import Client, Event, Request, Response, TransportLayer
from llmfast.layers import Coalesce, RedisFlightStore
from llmfast.testing import MockServer, Reply
from tests.redis_server import redis_process

_CHAT = "/v1/chat/completions"


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with MockServer() as server:
        yield server


@pytest.fixture
def namespace() -> str:
    return f"test-coalesce-{uuid.uuid4().hex}"


class Process:
    """One client with its own coalescing layer and Redis store: a process of the fleet."""

    def __init__(self, server: MockServer, redis_url: str, namespace: str, **store: Any) -> None:
        self.events: list[Event] = []
        self.joined = asyncio.Event()
        self.store = RedisFlightStore(redis_url, namespace=namespace, **store)
        self.client = Client(
            base_url=server.url,
            model="m",
            layers=[Coalesce(store=self.store)],
            on_event=self._on_event,
        )

    def _on_event(self, event: Event) -> None:
        self.events.append(event)
        if event.name == "coalesce.join" and event.data.get("remote"):
            self.joined.set()

    def named(self, name: str) -> list[Event]:
        return [e for e in self.events if e.name == name]

    async def text(self, prompt: str) -> str:
        reply = await self.client.chat(prompt, temperature=0)
        return reply.text or ""

    async def streamed(self, prompt: str) -> list[Any]:
        async with self.client.stream(prompt, temperature=0) as stream:
            return [chunk async for chunk in stream]


@pytest.fixture
async def fleet(server: MockServer, redis_url: str, namespace: str) -> AsyncIterator[list[Process]]:
    processes = [Process(server, redis_url, namespace, lease=1.5) for _ in range(4)]
    try:
        yield processes
    finally:
        for process in processes:
            await process.client.aclose()


async def test_every_process_gets_the_one_upstream_result(
    fleet: list[Process], server: MockServer
) -> None:
    server.enqueue(Reply.text("shared answer", delay=0.3))
    leader = asyncio.ensure_future(fleet[0].client.chat("q", temperature=0))
    await server.wait_for_requests(1)
    replies = await asyncio.gather(
        leader, *(p.client.chat("q", temperature=0) for p in fleet[1:] for _ in range(3))
    )
    assert server.request_count == 1
    assert all(reply == replies[0] for reply in replies)  # the same id, text and usage
    assert type(replies[-1]) is llmfast.ChatCompletion
    assert replies[-1].text == "shared answer"
    assert all(len(p.named("coalesce.join")) >= 1 for p in fleet[1:])


async def test_a_stream_reaches_followers_chunk_by_chunk(
    fleet: list[Process], server: MockServer
) -> None:
    server.enqueue(Reply.text("one two three four", chunk_size=1, token_delay=0.02, delay=0.1))
    leader = asyncio.ensure_future(fleet[0].streamed("s"))
    await server.wait_for_requests(1)
    streams = await asyncio.gather(leader, *(p.streamed("s") for p in fleet[1:]))
    assert server.request_count == 1
    assert all(chunks == streams[0] for chunks in streams)
    text = "".join(c.choices[0].delta.content or "" for c in streams[0] if c.choices)
    assert text == "one two three four"


async def test_embeddings_are_shared_typed(fleet: list[Process], server: MockServer) -> None:
    server.enqueue(Reply.echo(delay=0.2))
    leader = asyncio.ensure_future(fleet[0].client.embed(["a", "b"]))
    await server.wait_for_requests(1)
    results = await asyncio.gather(leader, *(p.client.embed(["a", "b"]) for p in fleet[1:]))
    assert server.request_count == 1
    assert all(type(r) is llmfast.EmbeddingResponse and r == results[0] for r in results)


async def test_the_leaders_error_reaches_followers_as_the_same_class(
    fleet: list[Process], server: MockServer
) -> None:
    server.enqueue(Reply.error(429, message="slow down", retry_after=7, delay=0.2))
    calls = [fleet[0].client.chat("e", temperature=0)]
    leader = asyncio.ensure_future(calls[0])
    await server.wait_for_requests(1)
    outcomes = await asyncio.gather(
        leader, *(p.client.chat("e", temperature=0) for p in fleet[1:]), return_exceptions=True
    )
    assert server.request_count == 1
    for error in outcomes:
        assert type(error) is llmfast.RateLimitError
        assert (error.status, error.message, error.retry_after) == (429, "slow down", 7.0)
        assert error.body == outcomes[0].body  # type: ignore[union-attr]


async def test_a_stream_failing_midway_fails_every_follower_alike(
    fleet: list[Process], server: MockServer
) -> None:
    server.enqueue(Reply.reset(after_chunks=2, delay=0.2))
    leader = asyncio.ensure_future(fleet[0].streamed("r"))
    await server.wait_for_requests(1)
    outcomes = await asyncio.gather(
        leader, *(p.streamed("r") for p in fleet[1:]), return_exceptions=True
    )
    assert server.request_count == 1
    assert all(isinstance(e, llmfast.ReadError) for e in outcomes), outcomes
    assert {type(e).__name__ for e in outcomes} == {type(outcomes[0]).__name__}


async def test_a_follower_takes_over_when_the_leader_is_closed(
    fleet: list[Process], server: MockServer
) -> None:
    server.enqueue(Reply.stall())  # the leader's call never answers
    leader = asyncio.ensure_future(fleet[0].text("t"))
    await server.wait_for_requests(1)
    follower = asyncio.ensure_future(fleet[1].text("t"))
    await asyncio.wait_for(fleet[1].joined.wait(), 5)
    await fleet[0].client.aclose()  # the leader's process stops: its call is abandoned
    assert await asyncio.wait_for(follower, 5) == "t"  # its own call, as the new leader
    assert server.request_count == 2
    with pytest.raises(llmfast.ClientClosedError):
        await leader


async def test_a_follower_waits_within_its_own_deadline(
    fleet: list[Process], server: MockServer
) -> None:
    server.enqueue(Reply.stall())
    leader = asyncio.ensure_future(fleet[0].text("d"))
    await server.wait_for_requests(1)
    with pytest.raises(llmfast.DeadlineExceeded):
        await fleet[1].client.chat("d", temperature=0, timeout=0.3)
    assert fleet[1].named("coalesce.join")  # it was following, not calling
    assert server.request_count == 1
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader


async def test_a_leader_renews_its_lease_while_its_call_outlasts_it(
    server: MockServer, redis_url: str, namespace: str
) -> None:
    leader, follower = (Process(server, redis_url, namespace, lease=0.3) for _ in range(2))
    try:
        server.enqueue(Reply.text("long call", delay=1.0))  # more than three leases
        first = asyncio.ensure_future(leader.text("l"))
        await server.wait_for_requests(1)
        assert list(await asyncio.gather(first, follower.text("l"))) == ["long call"] * 2
        assert server.request_count == 1  # the follower never took over
    finally:
        await leader.client.aclose()
        await follower.client.aclose()


class HeadersOnly(TransportLayer):
    """Inside the leader's coalescing layer: its stream's headers are in, then nothing
    comes (the upstream is real; the chunks are held back until cancelled)."""

    async def send(self, request: Request, /) -> Response:
        response = await self.inner.send(request)
        await response.aclose()

        async def nothing() -> AsyncIterator[Any]:
            await asyncio.Event().wait()
            yield None  # pragma: no cover - never reached

        return Response(request, status=response.status, headers=response.headers, chunks=nothing())


async def test_a_takeover_after_the_headers_alone_gives_the_whole_stream(
    server: MockServer, redis_url: str, namespace: str
) -> None:
    store = RedisFlightStore(redis_url, namespace=namespace)
    leader = Client(base_url=server.url, model="m", layers=[Coalesce(store=store), HeadersOnly])
    follower = Process(server, redis_url, namespace)
    try:

        async def read() -> None:
            async with leader.stream("h", temperature=0) as stream:
                async for _ in stream:
                    pass

        opened = asyncio.ensure_future(read())
        await server.wait_for_requests(1)
        call = asyncio.ensure_future(follower.streamed("h"))
        await asyncio.wait_for(follower.joined.wait(), 5)
        await leader.aclose()  # the leader's process stops before any chunk
        chunks = await asyncio.wait_for(call, 5)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "h"  # the follower's own call, streamed whole
        assert server.request_count == 2
        with pytest.raises(llmfast.ClientClosedError):
            await opened
    finally:
        await leader.aclose()
        await follower.client.aclose()


_LEADER = """
import asyncio, sys
import llmfast
from llmfast.layers import Coalesce, RedisFlightStore

async def main(url, redis_url, namespace):
    store = RedisFlightStore(redis_url, namespace=namespace, lease=0.6)
    async with llmfast.Client(base_url=url, model="m", layers=[Coalesce(store=store)]) as c:
        await c.chat("k", temperature=0)

asyncio.run(main(*sys.argv[1:4]))
"""


async def test_a_follower_takes_over_from_a_killed_leader_process(
    server: MockServer, redis_url: str, namespace: str
) -> None:
    server.enqueue(Reply.stall())
    leader = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _LEADER, server.url, redis_url, namespace
    )
    follower = Process(server, redis_url, namespace, lease=0.6)
    try:
        await server.wait_for_requests(1, timeout=30)
        call = asyncio.ensure_future(follower.text("k"))
        await asyncio.wait_for(follower.joined.wait(), 5)
        os.kill(leader.pid, signal.SIGKILL)
        assert await asyncio.wait_for(call, 5) == "k"
        assert server.request_count == 2  # the dead leader's call, then the follower's
    finally:
        if leader.returncode is None:
            leader.kill()
        await leader.wait()
        await follower.client.aclose()


async def test_redis_stopped_midway_falls_back_to_coalescing_in_process(
    server: MockServer, namespace: str
) -> None:
    with redis_process() as redis:
        a, b = (Process(server, redis.url, namespace, retry_interval=30) for _ in range(2))
        try:
            server.enqueue(Reply.text("before", delay=0.2))
            first = asyncio.ensure_future(a.text("x"))
            await server.wait_for_requests(1)
            assert list(await asyncio.gather(first, b.text("x"))) == ["before", "before"]
            b.joined.clear()

            server.enqueue(Reply.text("waited", delay=0.5))
            leader = asyncio.ensure_future(a.text("y"))
            await server.wait_for_requests(2)
            follower = asyncio.ensure_future(b.text("y"))
            await asyncio.wait_for(b.joined.wait(), 5)
            await asyncio.to_thread(redis.stop)
            # The follower calls on its own; the leader serves its callers.
            assert list(await asyncio.gather(leader, follower)) == ["waited", "y"]
            assert b.named("coalesce.error")

            # Redis is down: calls in one process still share one call.
            server.enqueue(Reply.text("local", delay=0.2))
            calls = [a.text("z") for _ in range(5)]
            assert await asyncio.gather(*calls) == ["local"] * 5
            assert server.request_count == 4
        finally:
            await a.client.aclose()
            await b.client.aclose()


async def test_a_follower_midway_through_a_stream_is_never_completed_from_elsewhere(
    server: MockServer, namespace: str
) -> None:
    with redis_process() as redis:
        a, b = (Process(server, redis.url, namespace, retry_interval=30) for _ in range(2))
        try:
            server.enqueue(Reply.text("a b c d e f g h", chunk_size=1, token_delay=0.1))
            leader = asyncio.ensure_future(a.streamed("m"))
            await server.wait_for_requests(1)
            got: list[Any] = []
            async with b.client.stream("m", temperature=0) as stream:
                with pytest.raises(llmfast.StreamInterruptedError) as raised:
                    async for chunk in stream:
                        got.append(chunk)
                        if len(got) == 3:
                            await asyncio.to_thread(redis.stop)
            assert isinstance(raised.value, llmfast.ReadError)
            assert len(raised.value.chunks) >= 3
            assert len(await leader) > len(got)  # the leader's own stream went on
            assert server.request_count == 1  # nothing was fetched again to finish it
        finally:
            await a.client.aclose()
            await b.client.aclose()


async def test_redis_stopping_under_a_failing_follower_fails_it(
    server: MockServer, namespace: str
) -> None:
    with redis_process() as redis:
        a = Process(server, redis.url, namespace)
        b = Process(server, redis.url, namespace, on_error="fail")
        try:
            server.enqueue(Reply.text("late", delay=0.5))
            leader = asyncio.ensure_future(a.text("w"))
            await server.wait_for_requests(1)
            follower = asyncio.ensure_future(b.text("w"))
            await asyncio.wait_for(b.joined.wait(), 5)
            await asyncio.to_thread(redis.stop)
            with pytest.raises(llmfast.CoalesceUnavailableError):
                await follower
            assert await leader == "late"
            assert server.request_count == 1
        finally:
            await a.client.aclose()
            await b.client.aclose()


async def test_unreachable_redis_can_fail_the_call(server: MockServer, namespace: str) -> None:
    with redis_process() as redis:
        url = redis.url
    failing = Process(server, url, namespace, on_error="fail", timeout=0.5)
    try:
        with pytest.raises(llmfast.CoalesceUnavailableError):
            await failing.text("f")
        with pytest.raises(llmfast.CoalesceUnavailableError):  # also while it stays down
            await failing.text("g")
        assert server.request_count == 0
    finally:
        await failing.client.aclose()


async def test_no_secret_reaches_redis(server: MockServer, redis_url: str, namespace: str) -> None:
    secret = "sk-secret-0123456789abcdef"
    store = RedisFlightStore(redis_url, namespace=namespace)
    client = Client(base_url=server.url, api_key=secret, model="m", layers=[Coalesce(store=store)])
    server.enqueue(Reply.text("fine", delay=0.3))
    redis = Redis.from_url(redis_url)
    try:
        call = asyncio.ensure_future(client.chat("p", temperature=0))
        await server.wait_for_requests(1)
        keys = [k async for k in redis.scan_iter(match=f"{namespace}:*")]
        assert keys  # the lease, while the call runs
        assert (await call).text == "fine"
        keys += [k async for k in redis.scan_iter(match=f"{namespace}:*")]
        dumped = b" ".join(keys)
        for key in keys:
            if await redis.type(key) == b"stream":
                dumped += repr(await redis.xrange(key)).encode()
        assert b"fine" in dumped  # the published answer was read ...
        assert secret.encode() not in dumped  # ... and the key is nowhere
        assert server.requests[0].headers["authorization"] == f"Bearer {secret}"
    finally:
        await redis.aclose()
        await client.aclose()


def test_store_settings_are_checked() -> None:
    with pytest.raises(llmfast.ConfigurationError):
        RedisFlightStore()
    with pytest.raises(llmfast.ConfigurationError):
        RedisFlightStore("redis://x", on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(llmfast.ConfigurationError):
        RedisFlightStore("redis://x", lease=0)
    store = RedisFlightStore("redis://:pw@x", namespace="n")
    assert "pw" not in repr(Coalesce(store=store))
