"""``RedisFlightStore``: coalescing shared by every process that uses the same Redis.

Install the extra: ``pip install llmfast[redis]``, then
``Coalesce(store=RedisFlightStore("redis://...", namespace="my-app"))``. Per request key
([`request_key`][llmfast.layers.request_key], which holds no secret) it keeps:

- a lease, ``<namespace>:{<key>}:lease``: ``SET NX PX`` by the process that becomes the
  leader of the call, holding a random token; renewed while the call runs and deleted
  at its end, so a leader that dies loses it within ``lease`` seconds;
- the followers, ``<namespace>:{<key>}:followers``: a sorted set of
  ``<leader token>|<follower id>`` members, each expiring ``lease`` seconds after the
  follower last said it is still there (it does at its claim, then every third of a
  lease). A leader whose own callers have all left keeps its call going while a
  member of its own remains;
- the leader's Redis stream, ``<namespace>:{<key>}:<token>``: the frames of its answer
  (see ``llmfast.layers.flight_frames``), kept ``result_ttl`` seconds after the end.
  Followers read it with a blocking ``XREAD`` from the first entry: nothing published
  before they came is missed, a stream's chunks reach them as they come, and any
  number of followers read one entry. (Pub/sub would lose what was published before a
  follower subscribed; a blocking list pop hands an entry to one reader only.)

When Redis cannot be reached, ``on_error`` decides: ``"local"`` (default) falls back
to coalescing within this process, and tries Redis again ``retry_interval`` seconds
later; ``"fail"`` raises [`CoalesceUnavailableError`][llmfast.errors.CoalesceUnavailableError].
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any, Literal

from llmfast.errors import ConfigurationError

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisFlightStore"]

_log = logging.getLogger("llmfast.coalesce")

_CLAIM = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1, ARGV[1]} end
local holder = redis.call('GET', KEYS[1])
if holder and ARGV[3] ~= '' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), holder .. '|' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
return {0, holder}
"""
_FOLLOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
_FOLLOWERS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local prefix = ARGV[1] .. '|'
local n = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(member, 1, #prefix) == prefix then n = n + 1 end
end
return n
"""
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
"""
_FINISH = """
redis.call('XADD', KEYS[2], '*', 'f', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


class RedisFlightStore:
    """Where coalesced calls meet across processes: a Redis server and a namespace.

    Args:
        url: a ``redis://`` URL (the store makes its own client and closes it in
            [`aclose`][llmfast.layers.RedisFlightStore.aclose]), or pass ``client``.
        client: a ``redis.asyncio.Redis`` you own (``decode_responses=False``).
        namespace: prefix of every key; processes share calls within one namespace.
        lease: seconds a leader holds its claim without renewing it (it renews every
            third of it): how soon a follower takes over from a leader that died.
        result_ttl: seconds a finished answer stays readable for late followers.
        on_error: ``"local"`` or ``"fail"`` (see the module docstring).
        retry_interval: seconds to stay local after a Redis failure.
        timeout: seconds to connect to or hear from Redis before it counts as down.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Redis | None = None,
        namespace: str = "llmfast:coalesce",
        lease: float = 10.0,
        result_ttl: float = 10.0,
        on_error: Literal["local", "fail"] = "local",
        retry_interval: float = 5.0,
        timeout: float = 1.0,
    ) -> None:
        if (url is None) == (client is None):
            raise ConfigurationError("pass exactly one of url= or client= to RedisFlightStore")
        if on_error not in ("local", "fail"):
            raise ConfigurationError("on_error must be 'local' or 'fail'")
        if not (lease > 0 and result_ttl > 0 and timeout > 0 and retry_interval >= 0):
            raise ConfigurationError(
                "need lease, result_ttl and timeout > 0 and retry_interval >= 0"
            )
        self.namespace = namespace
        self.lease = lease
        self.result_ttl = result_ttl
        self.on_error = on_error
        self.retry_interval = retry_interval
        self.timeout = timeout
        self.poll = min(lease / 3, 1.0)  # a follower checks the lease this often
        self._lease_ms = max(1, round(lease * 1000))
        self._result_ms = max(1, round(result_ttl * 1000))
        self._poll_ms = max(1, round(self.poll * 1000))
        self._down_until = float("-inf")
        self._tasks: set[asyncio.Task[None]] = set()
        if client is None:
            from redis.asyncio import Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            client = Redis.from_url(
                str(url),
                socket_timeout=timeout + self.poll,  # a blocking read waits up to `poll`
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 1),  # one quick retry: a pooled connection may be stale
            )
            self._owns_client = True
        else:
            if client.connection_pool.connection_kwargs.get("decode_responses"):
                raise ConfigurationError(
                    "RedisFlightStore needs a client with decode_responses=False"
                )
            self._owns_client = False
        from redis.exceptions import RedisError

        self.errors: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)
        self._redis: Redis = client
        self._claim = client.register_script(_CLAIM)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._finish = client.register_script(_FINISH)
        self._follow = client.register_script(_FOLLOW)
        self._followers = client.register_script(_FOLLOWERS)

    def __repr__(self) -> str:
        return f"RedisFlightStore(namespace={self.namespace!r}, on_error={self.on_error!r})"

    @property
    def available(self) -> bool:
        """False for ``retry_interval`` seconds after Redis failed (calls stay local)."""
        return time.monotonic() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        """Redis failed: stay local for ``retry_interval`` seconds."""
        if self.available:
            _log.warning(
                "Redis coalescing unreachable (%s); coalescing in this process for %.1f s",
                type(exc).__name__,
                self.retry_interval,
            )
        self._down_until = time.monotonic() + self.retry_interval

    def _lease_key(self, key: str) -> str:
        return f"{self.namespace}:{{{key}}}:lease"

    def _stream_key(self, key: str, token: str) -> str:
        return f"{self.namespace}:{{{key}}}:{token}"

    def _followers_key(self, key: str) -> str:
        return f"{self.namespace}:{{{key}}}:followers"

    async def claim(self, key: str, member: str = "") -> tuple[bool, str]:
        """Become the leader for ``key`` (``(True, token)``), or learn the leader's token;
        then, with a ``member`` id, follow it (in the same round trip)."""
        token = secrets.token_hex(8)
        keys = [self._lease_key(key), self._followers_key(key)]
        args: list[str | int] = [token, self._lease_ms, member, self._lease_ms + self._result_ms]
        reply: Any = await self._claim(keys, args)
        return bool(int(reply[0])), _text(reply[1])

    async def follow(self, key: str, token: str, member: str) -> None:
        """Say ``member`` still follows the leader holding ``token`` (for ``lease`` s)."""
        args: list[str | int] = [f"{token}|{member}", self._lease_ms, self._lease_ms * 2]
        await self._follow([self._followers_key(key)], args)

    async def unfollow(self, key: str, token: str, member: str) -> None:
        """``member`` no longer follows the leader holding ``token``."""
        await self._redis.zrem(self._followers_key(key), f"{token}|{member}")

    async def followers(self, key: str, token: str) -> int:
        """How many processes follow the leader holding ``token`` now."""
        reply: Any = await self._followers([self._followers_key(key)], [token])
        return int(reply)

    async def renew(self, key: str, token: str) -> bool:
        """Extend the lease and the stream's life; False when the lease is no longer ours."""
        keys = [self._lease_key(key), self._stream_key(key, token)]
        args: list[str | int] = [token, self._lease_ms, self._lease_ms + self._result_ms]
        reply: Any = await self._renew(keys, args)
        return bool(int(reply))

    async def release(self, key: str, token: str) -> None:
        """Give the lease up (when it is still ours)."""
        await self._release([self._lease_key(key)], [token])

    async def append(self, key: str, token: str, frames: list[bytes]) -> None:
        """Append ``frames`` to the leader's stream, in one round trip."""
        stream = self._stream_key(key, token)
        async with self._redis.pipeline(transaction=False) as pipe:
            for frame in frames:
                pipe.xadd(stream, {"f": frame})
            pipe.pexpire(stream, self._lease_ms + self._result_ms)
            await pipe.execute()

    async def finish(self, key: str, token: str, frame: bytes) -> None:
        """Append the final ``frame``, keep the stream ``result_ttl`` seconds and give
        the lease up (when it is still ours): one script, one round trip."""
        keys = [self._lease_key(key), self._stream_key(key, token)]
        await self._finish(keys, [token, frame, self._result_ms])

    async def read(
        self, key: str, token: str, after: bytes, *, block: bool = True
    ) -> list[tuple[bytes, bytes]]:
        """Frames of the leader's stream after entry ``after`` (``b"0-0"``: all),
        waiting up to ``poll`` seconds for one when ``block``; ``[]`` when none came."""
        reply: Any = await self._redis.xread(
            {self._stream_key(key, token): after},
            count=512,
            block=self._poll_ms if block else None,
        )
        if not reply:
            return []
        return [(entry_id, fields[b"f"]) for entry_id, fields in reply[0][1]]

    async def holder(self, key: str) -> str | None:
        """The token of the lease's holder now (``None``: no leader)."""
        value = await self._redis.get(self._lease_key(key))
        return None if value is None else _text(value)

    def track(self, task: asyncio.Task[None]) -> None:
        """Keep ``task`` (a flight, which may still publish after its callers have their
        answer) until it ends: [`aclose`][llmfast.layers.RedisFlightStore.aclose] waits for it."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Let the flights finish publishing (cancelling those still running after
        ``timeout``), then close the Redis client if this store made it."""
        tasks = list(self._tasks)
        if tasks:
            _, running = await asyncio.wait(tasks, timeout=self.timeout)
            for task in running:
                task.cancel()
            if running:
                await asyncio.wait(running)
        if self._owns_client:
            await self._redis.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
