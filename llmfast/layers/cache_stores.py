"""Where the cache keeps its entries: the ``CacheStore`` protocol and three stores.

A store maps a key (a hex string) to bytes, with an optional time to live. It knows
nothing of what the bytes mean: the cache layer encodes entries with msgspec (never
pickle, so whoever can write to a store still cannot run code in its readers).

- [`MemoryStore`][llmfast.layers.MemoryStore]: in this process; LRU with per-entry TTL,
  bounded in entries and in bytes (keys and bookkeeping counted, so memory follows
  the bound).
- [`RedisCacheStore`][llmfast.layers.RedisCacheStore]: shared by every process that uses the same
  Redis and namespace (``pip install llmfast[redis]``).
- [`TwoLevelStore`][llmfast.layers.TwoLevelStore]: a fast store in front of a shared one (memory
  before Redis).

A store may raise on failure (a lost Redis connection...): the cache layer reports it
as a ``cache.error`` event and carries on as if the entry were missing.
"""

from __future__ import annotations

import math
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from llmfast.errors import ConfigurationError

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["CacheStore", "MemoryStore", "RedisCacheStore", "TwoLevelStore"]


@runtime_checkable
class CacheStore(Protocol):
    """Async bytes storage with per-entry expiry."""

    async def get(self, key: str) -> bytes | None:
        """The value stored under ``key``, or ``None`` (missing or expired)."""
        ...

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        """Store ``value`` for ``ttl`` seconds (``None``: until evicted)."""
        ...

    async def delete(self, key: str) -> None:
        """Forget ``key`` (no error when it is missing)."""
        ...

    async def aclose(self) -> None:
        """Release what the store holds; the cache layer calls it when its client closes."""
        ...


ENTRY_OVERHEAD = 280
"""Bytes a ``MemoryStore`` entry takes besides its key and value objects: its slots in
the ordered dict (with the room a dict keeps free and the deleted slots it holds
until it next resizes) and the (value, expiry, size) tuple with its numbers.
Measured on CPython 3.11 with many small entries coming and going: 190-265."""

_Item = tuple[bytes, float, int]  # value, expiry, size of the whole entry


def entry_size(key: str, value: bytes) -> int:
    """What a ``MemoryStore`` counts for an entry: the key and value objects' sizes
    (``sys.getsizeof``) plus ``ENTRY_OVERHEAD``."""
    return sys.getsizeof(key) + sys.getsizeof(value) + ENTRY_OVERHEAD


class MemoryStore:
    """An in-process LRU store with per-entry TTL, bounded in entries and in bytes.

    Args:
        max_entries: at most this many entries; the least recently used go first.
        max_bytes: at most this many bytes of memory for the entries, each counted
            whole: its key, its value and the store's bookkeeping (see
            ``llmfast.layers.cache_stores.entry_size``), so that memory follows the
            bound even for many small entries. A single larger entry is not stored.
        clock: the time source for expiry (inject a fake one in tests).

    An expired entry is dropped when it is next read, or evicted like any other.
    """

    def __init__(
        self,
        *,
        max_entries: int = 4096,
        max_bytes: int = 64 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ConfigurationError("max_entries and max_bytes must be at least 1")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[str, _Item] = OrderedDict()  # least recently used first
        self._size = 0

    async def get(self, key: str) -> bytes | None:
        entries = self._entries
        item = entries.get(key)
        if item is None:
            return None
        if item[1] <= self._clock():
            del entries[key]
            self._size -= item[2]
            return None
        entries.move_to_end(key)
        return item[0]

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        entries = self._entries
        old = entries.pop(key, None)
        if old is not None:
            self._size -= old[2]
        size = entry_size(key, value)
        if size > self.max_bytes:
            return
        limit = self.max_bytes - size
        while entries and (self._size > limit or len(entries) >= self.max_entries):
            self._size -= entries.popitem(last=False)[1][2]
        entries[key] = (value, math.inf if ttl is None else self._clock() + ttl, size)
        self._size += size

    async def delete(self, key: str) -> None:
        item = self._entries.pop(key, None)
        if item is not None:
            self._size -= item[2]

    async def aclose(self) -> None:
        """Nothing to release: a memory store may be shared by several clients."""

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """Bytes the entries held now take, as ``max_bytes`` counts them."""
        return self._size

    def __repr__(self) -> str:
        return f"MemoryStore(max_entries={self.max_entries}, max_bytes={self.max_bytes})"


class RedisCacheStore:
    """A store in Redis, shared by every process using the same server and namespace.

    Pass either ``url`` (the store makes its own client, with ``timeout`` for
    connecting and for every command, and closes it in
    [`aclose`][llmfast.layers.RedisCacheStore.aclose]) or ``client`` (a ``redis.asyncio.Redis`` you
    own and close; it must not decode responses).

    Keys are ``"<namespace>:<key>"``; values expire with Redis' own TTL.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Redis | None = None,
        namespace: str = "llmfast:cache",
        timeout: float = 1.0,
    ) -> None:
        if (url is None) == (client is None):
            raise ConfigurationError("pass exactly one of url= or client= to RedisCacheStore")
        if timeout <= 0:
            raise ConfigurationError("timeout must be positive")
        if client is None:
            try:
                import redis.asyncio as aioredis
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise ConfigurationError(
                    "RedisCacheStore needs the redis package: pip install llmfast[redis]"
                ) from exc
            client = aioredis.from_url(
                str(url), socket_timeout=timeout, socket_connect_timeout=timeout
            )
            self._owns_client = True
        else:
            if client.connection_pool.connection_kwargs.get("decode_responses"):
                raise ConfigurationError(
                    "RedisCacheStore needs a client with decode_responses=False"
                )
            self._owns_client = False
        self._redis: Redis = client
        self.namespace = namespace
        self._prefix = f"{namespace}:"

    async def get(self, key: str) -> bytes | None:
        value = await self._redis.get(self._prefix + key)
        return None if value is None else bytes(value)  # type: ignore[arg-type]

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        milliseconds = None if ttl is None else max(1, math.ceil(ttl * 1000))
        await self._redis.set(self._prefix + key, value, px=milliseconds)

    async def delete(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)

    async def aclose(self) -> None:
        """Close the Redis client if this store made it."""
        if self._owns_client:
            await self._redis.aclose()

    def __repr__(self) -> str:
        return f"RedisCacheStore(namespace={self.namespace!r})"


class TwoLevelStore:
    """A fast ``front`` store (memory) before a shared ``back`` store (Redis).

    Reads try the front, then the back (copying a back hit to the front); writes go
    to both. The front keeps an entry at most ``front_ttl`` seconds, so an entry
    removed or replaced in the back is seen by every process within that time.
    """

    def __init__(
        self, front: CacheStore, back: CacheStore, *, front_ttl: float | None = 60.0
    ) -> None:
        if front_ttl is not None and front_ttl <= 0:
            raise ConfigurationError("front_ttl must be positive or None")
        self.front = front
        self.back = back
        self.front_ttl = front_ttl

    def _front_ttl(self, ttl: float | None) -> float | None:
        limit = self.front_ttl
        if ttl is None:
            return limit
        return ttl if limit is None else min(ttl, limit)

    async def get(self, key: str) -> bytes | None:
        value = await self.front.get(key)
        if value is None:
            value = await self.back.get(key)
            if value is not None:
                await self.front.set(key, value, self.front_ttl)
        return value

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        await self.front.set(key, value, self._front_ttl(ttl))
        await self.back.set(key, value, ttl)

    async def delete(self, key: str) -> None:
        await self.front.delete(key)
        await self.back.delete(key)

    async def aclose(self) -> None:
        try:
            await self.front.aclose()
        finally:
            await self.back.aclose()

    def __repr__(self) -> str:
        return f"TwoLevelStore({self.front!r}, {self.back!r})"
