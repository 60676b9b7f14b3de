"""The cache layer and its stores, over real HTTP (MockServer) and a real redis-server."""

from __future__ import annotations

import asyncio
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis

import llmfast
from llmfast import (
    ChatCompletionChunk,
    ChatRequest,
    Client,
    ConfigurationError,
    Event,
    Request,
    StreamInterruptedError,
    UserMessage,
)
from llmfast.layers.cache import Cache, CacheEntry
from llmfast.layers.cache_stores import (
    CacheStore,
    MemoryStore,
    RedisCacheStore,
    TwoLevelStore,
    entry_size,
)
from llmfast.testing import MockServer, Reply
from tests.fakeclock import FakeClock

SECRET = "sk-test-SECRET-not-in-the-cache"


class Events:
    """Collects the events a client reports, by name."""

    def __init__(self) -> None:
        self.seen: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.seen.append(event)

    def names(self, prefix: str = "cache.") -> list[str]:
        return [e.name for e in self.seen if e.name.startswith(prefix)]

    def keys(self, name: str) -> list[str]:
        return [e.data["key"] for e in self.seen if e.name == name]


def make_client(server: MockServer, events: Events | None = None, **options: Any) -> Client:
    return Client(
        base_url=server.url,
        api_key=SECRET,
        model="m",
        layers=[Cache(**options)],
        on_event=events,
    )


def builtins(chunks: list[ChatCompletionChunk]) -> Any:
    return msgspec.to_builtins(chunks)


async def read_stream(client: Client, prompt: str, **params: Any) -> list[ChatCompletionChunk]:
    async with client.stream(prompt, temperature=0, **params) as stream:
        return [chunk async for chunk in stream]


def chat(prompt: str, **params: Any) -> ChatRequest:
    return ChatRequest(model="m", messages=[UserMessage(prompt)], **params)


# --- plain calls -----------------------------------------------------------------------


async def test_a_hit_is_served_without_reaching_the_server(server: MockServer) -> None:
    events = Events()
    async with make_client(server, events) as client:
        first = await client.chat("hello", temperature=0)
        server.enqueue(Reply.error(500))  # would fail the call if it went upstream
        second = await client.chat("hello", temperature=0)
        assert repr(client).startswith("<Client Cache(MemoryStore(")
    assert server.request_count == 1
    assert second == first
    assert second is not first  # every hit decodes a fresh copy
    assert events.names() == ["cache.miss", "cache.store", "cache.hit"]
    assert len(set(events.keys("cache.miss") + events.keys("cache.hit"))) == 1


async def test_a_hit_has_the_cache_header(server: MockServer) -> None:
    async with make_client(server) as client:
        await client.chat("hi", temperature=0)
        response = await client.send(Request(chat("hi", temperature=0)))
        assert response.headers["x-llmfast-cache"] == "hit"
        assert (await response.collect()).text == "hi"


async def test_only_deterministic_requests_are_cached_by_default(server: MockServer) -> None:
    async with make_client(server) as client:
        for _ in range(2):
            await client.chat("sampled", temperature=0.7)
        assert server.request_count == 2
        for _ in range(2):
            await client.chat("seeded", temperature=0.7, seed=3)
        assert server.request_count == 3


async def test_the_policy_is_configurable(server: MockServer) -> None:
    async with make_client(server, cacheable=lambda request: True) as client:
        await client.chat("sampled", temperature=1.0)
        await client.chat("sampled", temperature=1.0)
    assert server.request_count == 1


async def test_per_call_use_bypass_and_refresh(server: MockServer) -> None:
    events = Events()
    async with make_client(server, events, enabled=False) as client:

        async def call(mode: str | None, **params: Any) -> str | None:
            context = None if mode is None else {"cache": mode}
            response = await client.send(Request(chat("q", **params), context=context))
            result = await response.collect()
            return result.text  # type: ignore[no-any-return]

        await call(None, temperature=0)  # disabled on the client: not cached
        await call(None, temperature=0)
        assert server.request_count == 2
        await call("use", temperature=1.0)  # "use" caches even a sampled call
        await call("use", temperature=1.0)
        assert server.request_count == 3
        server.enqueue(Reply.text("fresh"))
        assert await call("refresh", temperature=1.0) == "fresh"  # not read, but stored
        assert await call("use", temperature=1.0) == "fresh"
        assert server.request_count == 4
        await call("bypass", temperature=1.0)
        assert server.request_count == 5
        assert await call("use", temperature=1.0) == "fresh"  # bypass stored nothing
        with pytest.raises(ConfigurationError, match="context"):
            await call("sometimes")
    assert server.request_count == 5


async def test_errors_are_never_cached(server: MockServer) -> None:
    server.enqueue(Reply.error(400))
    async with make_client(server) as client:
        with pytest.raises(llmfast.BadRequestError):
            await client.chat("x", temperature=0)
        assert (await client.chat("x", temperature=0)).text == "x"
    assert server.request_count == 2


async def test_embeddings_are_cached(server: MockServer) -> None:
    async with make_client(server) as client:
        first = await client.embed(["a", "b"], dimensions=4)
        again = await client.embed(["a", "b"], dimensions=4)
        other = await client.embed(["a", "b"], dimensions=5)
    assert again.vectors == first.vectors
    assert len(other.vectors[0]) == 5
    assert server.request_count == 2


async def test_provider_parameters_are_part_of_the_key(server: MockServer) -> None:
    async with make_client(server) as client:
        await client.chat("x", temperature=0, extra_body={"top_k": 1})
        await client.chat("x", temperature=0, extra_body={"top_k": 2})
        await client.chat("x", temperature=0, extra_body={"top_k": 1})
    assert server.request_count == 2


async def test_two_backends_never_share_entries(server: MockServer) -> None:
    store = MemoryStore()
    async with MockServer() as other:
        for url in (server.url, other.url):
            async with Client(base_url=url, model="m", layers=[Cache(store=store)]) as client:
                await client.chat("same", temperature=0)
        assert other.request_count == 1
    assert server.request_count == 1
    assert len(store) == 2


# --- streams ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        Reply.text("one two three four", token_delay=0.0),
        Reply.tool_calls(
            [
                {"name": "weather", "arguments": {"city": "Paris", "unit": "C"}},
                {"name": "time", "arguments": {"zone": "CET"}},
            ],
            text="Let me check.",
        ),
    ],
    ids=["text", "tool_calls"],
)
async def test_a_stream_is_replayed_chunk_for_chunk(server: MockServer, reply: Reply) -> None:
    events = Events()
    server.enqueue(reply)
    async with make_client(server, events) as client:
        live = await read_stream(client, "hello")
        async with client.stream("hello", temperature=0) as stream:
            assert stream.response.headers["x-llmfast-cache"] == "hit"
            replayed = [chunk async for chunk in stream]
            completion = stream.completion
    assert server.request_count == 1
    assert len(live) > 3
    assert live[-1].usage is not None  # the usage chunk is replayed too
    assert builtins(replayed) == builtins(live)
    assert completion.usage == live[-1].usage
    assert events.names() == ["cache.miss", "cache.store", "cache.hit"]


async def test_a_stream_and_a_plain_call_have_separate_entries(server: MockServer) -> None:
    async with make_client(server) as client:
        chunks = await read_stream(client, "hi")
        completion = await client.chat("hi", temperature=0)
        assert server.request_count == 2
        assert builtins(await read_stream(client, "hi")) == builtins(chunks)
        assert await client.chat("hi", temperature=0) == completion
    assert server.request_count == 2


async def test_a_stream_closed_half_way_is_never_stored(server: MockServer) -> None:
    events = Events()
    async with make_client(server, events) as client:
        async with client.stream("one two three four five", temperature=0) as stream:
            async for _chunk in stream:
                break
        full = await read_stream(client, "one two three four five")
        assert server.request_count == 2
        assert builtins(await read_stream(client, "one two three four five")) == builtins(full)
    assert server.request_count == 2
    assert events.names() == ["cache.miss", "cache.miss", "cache.store", "cache.hit"]


async def test_a_stream_never_read_is_never_stored(server: MockServer) -> None:
    async with make_client(server) as client:
        async with client.stream("unread", temperature=0):
            pass
        await read_stream(client, "unread")
    assert server.request_count == 2


async def test_a_cancelled_stream_is_never_stored(server: MockServer) -> None:
    server.enqueue(Reply.stall(after_chunks=2))
    got_two = asyncio.Event()
    events = Events()
    async with make_client(server, events) as client:

        async def reader() -> None:
            async with client.stream("a b c d", temperature=0) as stream:
                count = 0
                async for _chunk in stream:
                    count += 1
                    if count == 2:
                        got_two.set()

        task = asyncio.create_task(reader())
        await asyncio.wait_for(got_two.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert "cache.store" not in events.names()
        await read_stream(client, "a b c d")
    assert server.request_count == 2
    assert events.names().count("cache.store") == 1


@pytest.mark.parametrize(
    "fault",
    [
        Reply.stream_error({"message": "boom"}, after_chunks=2),
        Reply.truncated(after_chunks=2),
        Reply.reset(after_chunks=2),
        Reply.malformed(after_chunks=2),
    ],
    ids=["error_event", "truncated", "reset", "malformed"],
)
async def test_a_failed_stream_is_never_stored(server: MockServer, fault: Reply) -> None:
    events = Events()
    server.enqueue(fault)
    async with make_client(server, events) as client:
        with pytest.raises(StreamInterruptedError):
            await read_stream(client, "a b c d")
        assert "cache.store" not in events.names()
        await read_stream(client, "a b c d")
    assert server.request_count == 2


# --- the memory store ------------------------------------------------------------------


async def test_memory_store_lru_eviction_by_entries() -> None:
    store = MemoryStore(max_entries=2)
    await store.set("a", b"1", None)
    await store.set("b", b"2", None)
    assert await store.get("a") == b"1"  # "a" is now the most recently used
    await store.set("c", b"3", None)
    assert await store.get("b") is None
    assert await store.get("a") == b"1"
    assert await store.get("c") == b"3"
    assert len(store) == 2


async def test_memory_store_bound_on_bytes() -> None:
    five, three = entry_size("a", b"12345"), entry_size("c", b"123")
    store = MemoryStore(max_bytes=2 * five)
    await store.set("a", b"12345", None)
    await store.set("b", b"12345", None)
    assert store.size_bytes == 2 * five
    await store.set("c", b"123", None)  # evicts the least recently used, "a"
    assert await store.get("a") is None
    assert await store.get("b") == b"12345"
    assert store.size_bytes == five + three
    await store.set("big", b"x" * 2 * five, None)  # larger than the whole store: not stored
    assert await store.get("big") is None
    assert store.size_bytes == five + three
    await store.delete("b")
    assert store.size_bytes == three


async def test_memory_store_ttl_with_an_injected_clock() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    await store.set("short", b"s", 10.0)
    await store.set("forever", b"f", None)
    clock.now += 9.999
    assert await store.get("short") == b"s"
    clock.now += 0.002
    assert await store.get("short") is None
    clock.now += 10**9
    assert await store.get("forever") == b"f"


async def test_cache_ttl_expires_entries(server: MockServer) -> None:
    clock = FakeClock()
    async with make_client(server, store=MemoryStore(clock=clock), ttl=60.0) as client:
        await client.chat("x", temperature=0)
        clock.now += 59.0
        await client.chat("x", temperature=0)
        assert server.request_count == 1
        clock.now += 2.0
        await client.chat("x", temperature=0)
    assert server.request_count == 2


def test_configuration_is_validated() -> None:
    with pytest.raises(ConfigurationError):
        Cache(ttl=0)
    with pytest.raises(ConfigurationError):
        Cache(store=object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        MemoryStore(max_entries=0)
    with pytest.raises(ConfigurationError):
        RedisCacheStore()
    with pytest.raises(ConfigurationError):
        TwoLevelStore(MemoryStore(), MemoryStore(), front_ttl=0)


# --- Redis -----------------------------------------------------------------------------


@pytest.fixture
def namespace() -> str:
    return f"test:{uuid.uuid4().hex}"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


async def test_redis_store_round_trip_and_ttl(
    redis_url: str, redis: aioredis.Redis, namespace: str
) -> None:
    store = RedisCacheStore(redis_url, namespace=namespace)
    try:
        assert isinstance(store, CacheStore)
        await store.set("k", b"\x00value", 30.0)
        await store.set("forever", b"v", None)
        assert await store.get("k") == b"\x00value"
        assert await store.get("missing") is None
        assert 29_000 < await redis.pttl(f"{namespace}:k") <= 30_000
        assert await redis.pttl(f"{namespace}:forever") == -1
        await store.delete("k")
        assert await store.get("k") is None
        assert "redis://" not in repr(store)
    finally:
        await store.aclose()


async def test_redis_store_refuses_a_decoding_client(redis_url: str) -> None:
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        with pytest.raises(ConfigurationError, match="decode_responses"):
            RedisCacheStore(client=client)
    finally:
        await client.aclose()


async def test_clients_share_hits_through_redis(
    server: MockServer, redis_url: str, namespace: str
) -> None:
    results = []
    for _ in range(2):
        store = RedisCacheStore(redis_url, namespace=namespace)
        async with make_client(server, store=store) as client:
            results.append(await client.chat("shared", temperature=0))
    assert server.request_count == 1
    assert results[0] == results[1]


async def test_a_corrupted_redis_entry_is_a_reported_miss(
    server: MockServer, redis_url: str, redis: aioredis.Redis, namespace: str
) -> None:
    events = Events()
    async with make_client(
        server, events, store=RedisCacheStore(redis_url, namespace=namespace)
    ) as c:
        await c.chat("x", temperature=0)
        (key,) = events.keys("cache.store")
        await redis.set(f"{namespace}:{key}", b"\xc1 not msgpack")
        assert (await c.chat("x", temperature=0)).text == "x"
        assert server.request_count == 2
        # A well-formed but foreign value (not a CacheEntry) is a miss too.
        await redis.set(f"{namespace}:{key}", msgspec.msgpack.encode({"cmd": "rm -rf /"}))
        assert (await c.chat("x", temperature=0)).text == "x"
        assert server.request_count == 3
        # An empty entry is no answer either.
        await redis.set(f"{namespace}:{key}", msgspec.msgpack.encode(CacheEntry()))
        await c.chat("x", temperature=0)
        assert server.request_count == 4
        await c.chat("x", temperature=0)  # the last store replaced the bad entry
    assert server.request_count == 4
    errors = [e for e in events.seen if e.name == "cache.error"]
    assert len(errors) == 3
    assert all(e.data["key"] == key for e in errors)
    assert isinstance(errors[0].data["error"], msgspec.DecodeError)
    assert events.names()[-1] == "cache.hit"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_an_unreachable_redis_never_fails_a_call(server: MockServer) -> None:
    events = Events()
    store = RedisCacheStore(f"redis://127.0.0.1:{_closed_port()}/0", timeout=0.5)
    async with make_client(server, events, store=store) as client:
        assert (await client.chat("x", temperature=0)).text == "x"
        chunks = await read_stream(client, "y")
    assert "".join(c.text for c in chunks) == "y"
    assert events.names() == ["cache.error", "cache.miss", "cache.error"] * 2
    error = next(e for e in events.seen if e.name == "cache.error").data["error"]
    assert isinstance(error, Exception)
    assert SECRET not in str(error)


async def test_two_level_store(redis_url: str, namespace: str) -> None:
    clock = FakeClock()
    back = RedisCacheStore(redis_url, namespace=namespace)
    front = MemoryStore(clock=clock)
    store = TwoLevelStore(front, back, front_ttl=5.0)
    try:
        await store.set("k", b"v", 100.0)
        assert await front.get("k") == b"v"
        assert await back.get("k") == b"v"
        clock.now += 6.0  # the front copy expired; the back one serves and refills it
        assert await front.get("k") is None
        assert await store.get("k") == b"v"
        assert await front.get("k") == b"v"
        # Another process's entry, only in Redis, is found and copied to the front.
        await back.set("other", b"o", None)
        assert await store.get("other") == b"o"
        assert await front.get("other") == b"o"
        await store.delete("other")
        assert await store.get("other") is None
    finally:
        await store.aclose()


_CHILD = """
import asyncio, sys
import llmfast
from llmfast.layers.cache import Cache
from llmfast.layers.cache_stores import RedisCacheStore

async def main(url: str, redis_url: str, namespace: str) -> None:
    store = RedisCacheStore(redis_url, namespace=namespace)
    async with llmfast.Client(base_url=url, model="m", layers=[Cache(store=store)]) as client:
        print((await client.chat("from-parent", temperature=0)).text)
        print((await client.chat("from-child", temperature=0)).text)

asyncio.run(main(*sys.argv[1:]))
"""


async def test_two_processes_share_hits_through_redis(
    server: MockServer, redis_url: str, namespace: str
) -> None:
    server.enqueue(Reply.text("parent answer"), Reply.text("child answer"))

    def client() -> Client:
        return make_client(server, store=RedisCacheStore(redis_url, namespace=namespace))

    async with client() as parent:
        assert (await parent.chat("from-parent", temperature=0)).text == "parent answer"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CHILD,
        server.url,
        redis_url,
        namespace,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(child.communicate(), 30)
    assert child.returncode == 0, err.decode()
    assert out.decode().splitlines() == ["parent answer", "child answer"]
    assert server.request_count == 2  # the child hit the parent's entry
    async with client() as parent:
        assert (await parent.chat("from-child", temperature=0)).text == "child answer"
    assert server.request_count == 2  # and the parent hit the child's
