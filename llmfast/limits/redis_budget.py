"""``RedisLimitStore``: the same limits shared by every process that names the same key.

Install the extra: ``pip install llmfast[redis]``. Each admission is one atomic Lua
script (a sliding-window log, see ``llmfast.limits.redis_lua``), so any number of
processes and machines together never exceed the limits.

When Redis cannot be reached, ``on_error`` decides:

- ``"fail"`` (default): fail closed; the call raises ``LimiterUnavailableError``,
  so the fleet never goes over the provider's quota.
- ``"local"``: fall back to limits kept in this process (the shared limits times
  ``local_fraction``, e.g. ``1/4`` in a fleet of four) and try Redis again
  ``retry_interval`` seconds later.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Literal

from llmfast.errors import ConfigurationError, LimiterUnavailableError
from llmfast.limits.budget import Clock, LocalBudget, Ticket
from llmfast.limits.redis_lua import CORRECT, PAUSE, RESERVE

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisBudget", "RedisLimitStore"]

_log = logging.getLogger("llmfast.ratelimit")
_US = 1_000_000


class RedisLimitStore:
    """Where shared limits live: a Redis server and the key naming one budget.

    Args:
        redis: a ``redis://`` URL (the layer opens and closes its own client), or a
            ``redis.asyncio.Redis`` client you own.
        key: names the budget; every process using the same key shares it. Name the
            account or API key's purpose (``"openai-prod"``), never the secret itself.
        on_error: ``"fail"`` or ``"local"`` (see the module docstring).
        local_fraction: share of the limits each process keeps when falling back.
        retry_interval: seconds to stay on local limits before trying Redis again.
        timeout: seconds to connect to or hear from Redis before it counts as down.
    """

    def __init__(
        self,
        redis: str | Redis,
        *,
        key: str,
        on_error: Literal["fail", "local"] = "fail",
        local_fraction: float = 1.0,
        retry_interval: float = 5.0,
        timeout: float = 1.0,
    ) -> None:
        if not key:
            raise ConfigurationError("RedisLimitStore needs a key naming the shared budget")
        if on_error not in ("fail", "local"):
            raise ConfigurationError("on_error must be 'fail' or 'local'")
        if not 0 < local_fraction <= 1 or retry_interval < 0 or timeout <= 0:
            raise ConfigurationError(
                "need 0 < local_fraction <= 1, retry_interval >= 0 and timeout > 0"
            )
        self.redis = redis
        self.key = key
        self.on_error = on_error
        self.local_fraction = local_fraction
        self.retry_interval = retry_interval
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"RedisLimitStore(key={self.key!r}, on_error={self.on_error!r})"

    def budget(
        self, *, requests: int | None, tokens: int | None, period: float, clock: Clock
    ) -> RedisBudget:
        """The budget a rate-limit layer uses."""
        return RedisBudget(self, requests=requests, tokens=tokens, period=period, clock=clock)


def _connect(store: RedisLimitStore) -> tuple[Redis, bool]:
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    if not isinstance(store.redis, str):
        return store.redis, False
    client = Redis.from_url(
        store.redis,
        socket_timeout=store.timeout,
        socket_connect_timeout=store.timeout,
        retry=Retry(NoBackoff(), 1),  # one quick retry: a pooled connection may be stale
    )
    return client, True


def _scaled(limit: int | None, fraction: float) -> int | None:
    return None if limit is None else max(int(limit * fraction), 1)


class RedisBudget:
    """A ``Budget`` kept in Redis; tickets are admission times in Redis microseconds."""

    def __init__(
        self,
        store: RedisLimitStore,
        *,
        requests: int | None,
        tokens: int | None,
        period: float,
        clock: Clock,
    ) -> None:
        from redis.exceptions import RedisError

        self.store = store
        self.request_limit = requests
        self.token_limit = tokens
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)
        self._client, self._owned = _connect(store)
        self._reserve = self._client.register_script(RESERVE)
        self._correct = self._client.register_script(CORRECT)
        self._pause = self._client.register_script(PAUSE)
        prefix = f"llmfast:ratelimit:{{{store.key}}}"
        self._reserve_keys = [f"{prefix}:{name}" for name in ("req", "tok", "sum", "pause", "seq")]
        self._correct_keys = [f"{prefix}:{name}" for name in ("tok", "sum", "seq")]
        self._period_us = round(period * _US)
        self._limits = (self._period_us, requests or 0, tokens or 0)
        self._clock = clock
        self._local = LocalBudget(
            requests=_scaled(requests, store.local_fraction),
            tokens=_scaled(tokens, store.local_fraction),
            period=period,
            clock=clock,
        )
        self._local_until = float("-inf")
        self._paused_until = float("-inf")
        self._seen: tuple[int, int] = (0, 0)

    @property
    def on_local_limits(self) -> bool:
        """True while Redis is unreachable and the local fallback limits apply."""
        return self._clock() < self._local_until

    def _unavailable(self, exc: BaseException) -> None:
        """Apply the ``on_error`` policy (raises when failing closed)."""
        if self.store.on_error == "fail":
            raise LimiterUnavailableError(
                f"the shared rate limit in Redis is unreachable: {type(exc).__name__}"
            ) from exc
        _log.warning(
            "Redis rate limit unreachable (%s); using local limits for %.1f s",
            type(exc).__name__,
            self.store.retry_interval,
        )
        self._local_until = self._clock() + self.store.retry_interval

    async def reserve(self, tokens: int) -> tuple[float, Ticket]:
        now = self._clock()
        if now < self._paused_until:
            return self._paused_until - now, None
        if now >= self._local_until:
            try:
                reply: Any = await self._reserve(self._reserve_keys, [*self._limits, tokens])
            except self._errors as exc:
                self._unavailable(exc)
            else:
                wait_us, now_us, requests, used = (int(value) for value in reply)
                self._seen = (requests, used)
                return (wait_us / _US, None) if wait_us > 0 else (0.0, now_us)
        return self._local.reserve_now(tokens)

    async def correct(self, ticket: Ticket, delta: int) -> None:
        if type(ticket) is int:
            args = (self._period_us, ticket, delta)
            try:
                await self._correct(self._correct_keys, args)
            except self._errors as exc:
                _log.warning("could not correct the shared token count: %s", type(exc).__name__)
        else:
            self._local.correct_now(ticket, delta)

    async def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        try:
            await self._pause(self._reserve_keys[3:4], [round(seconds * _US)])
        except self._errors as exc:
            _log.warning("could not share the pause through Redis: %s", type(exc).__name__)

    @property
    def available_requests(self) -> int | None:
        if self.request_limit is None:
            return None
        if self.on_local_limits:
            return self._local.available_requests
        return max(self.request_limit - self._seen[0], 0)

    @property
    def available_tokens(self) -> int | None:
        if self.token_limit is None:
            return None
        if self.on_local_limits:
            return self._local.available_tokens
        return max(self.token_limit - self._seen[1], 0)

    async def aclose(self) -> None:
        if self._owned:
            await self._client.aclose()
