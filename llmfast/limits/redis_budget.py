"""``RedisLimitStore``: the same limits shared by every process that names the same key.

Install the extra: ``pip install llmfast[redis]``. Each admission is one atomic Lua
script (a sliding-window log, see ``llmfast.limits.redis_lua``), so any number of
processes and machines together never exceed the limits.

When Redis cannot be reached, ``on_error`` decides:

- ``"fail"`` (default): fail closed; the call raises ``LimiterUnavailableError``,
  so the fleet never goes over the provider's quota.
- ``"local"``: fall back to limits kept in this process and try Redis again
  ``retry_interval`` seconds later. Each process takes its share of the fleet's
  usage in the last window it saw in Redis (or ``local_fraction`` of the limits),
  and starts from its own admissions still in the window, not from an empty one;
  for a period after Redis answers again it keeps to that share as well.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Literal

from llmfast.errors import ConfigurationError, LimiterUnavailableError
from llmfast.limits.budget import Clock, LocalBudget, LocalTicket, Ticket
from llmfast.limits.redis_lua import CORRECT, PAUSE, RESERVE, SETTLE

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
        local_fraction: share of the limits each process keeps when falling back;
            ``None`` (default): its share of the fleet's usage in the last window it
            saw in Redis (at least one request per period).
        retry_interval: seconds to stay on local limits before trying Redis again.
        timeout: seconds to connect to or hear from Redis before it counts as down.
    """

    def __init__(
        self,
        redis: str | Redis,
        *,
        key: str,
        on_error: Literal["fail", "local"] = "fail",
        local_fraction: float | None = None,
        retry_interval: float = 5.0,
        timeout: float = 1.0,
    ) -> None:
        if not key:
            raise ConfigurationError("RedisLimitStore needs a key naming the shared budget")
        if on_error not in ("fail", "local"):
            raise ConfigurationError("on_error must be 'fail' or 'local'")
        fraction_ok = local_fraction is None or 0 < local_fraction <= 1
        if not fraction_ok or retry_interval < 0 or timeout <= 0:
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
        self,
        *,
        requests: int | None,
        tokens: int | None,
        period: float,
        clock: Clock,
        margin: float = 0.0,
    ) -> RedisBudget:
        """The budget a rate-limit layer uses."""
        return RedisBudget(
            self, requests=requests, tokens=tokens, period=period, clock=clock, margin=margin
        )


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


def _share(limit: int | None, fraction: float | None, own: float, fleet: int) -> int | None:
    """The local limit of one process: ``fraction`` of ``limit``, else its share of use."""
    if limit is None:
        return None
    if fraction is not None:
        return max(int(limit * fraction), 1)
    return max(int(limit * own / fleet), 1) if fleet > 0 else 1


class _Admitted:
    """A Redis admission: its score (Redis microseconds), its entries' names, and the
    same admission in this process's own log."""

    __slots__ = ("mirror", "request", "stamp", "token")

    def __init__(self, stamp: int, request: str, token: str, mirror: LocalTicket) -> None:
        self.stamp = stamp
        self.request = request
        self.token = token
        self.mirror = mirror


class RedisBudget:
    """A ``LimitBudget`` kept in Redis, with this process's own admissions mirrored in a
    local budget: the fallback when Redis is unreachable starts from them."""

    def __init__(
        self,
        store: RedisLimitStore,
        *,
        requests: int | None,
        tokens: int | None,
        period: float,
        clock: Clock,
        margin: float = 0.0,
    ) -> None:
        from redis.exceptions import RedisError

        self.store = store
        self.request_limit = requests
        self.token_limit = tokens
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)
        self._client, self._owned = _connect(store)
        self._reserve = self._client.register_script(RESERVE)
        self._correct = self._client.register_script(CORRECT)
        self._settle = self._client.register_script(SETTLE)
        self._pause = self._client.register_script(PAUSE)
        prefix = f"llmfast:ratelimit:{{{store.key}}}"
        self._reserve_keys = [f"{prefix}:{name}" for name in ("req", "tok", "sum", "pause", "seq")]
        self._settle_keys = [f"{prefix}:{name}" for name in ("req", "tok", "sum", "seq")]
        self._correct_keys = self._settle_keys[1:]
        self._period = period
        self._period_us = round(period * _US)
        margin_us = round(margin * _US)
        self._limits = (self._period_us, requests or 0, tokens or 0)
        self._margin_us = margin_us
        self._ttl_ms = -(-(self._period_us + margin_us) // 1000) + 1000
        self._clock = clock
        self._local = LocalBudget(
            requests=requests, tokens=tokens, period=period, clock=clock, margin=margin
        )
        self._local_until = float("-inf")
        self._guard_until = float("-inf")
        self._paused_until = float("-inf")
        self._seen: tuple[int, int] = (0, 0)
        self._fresh = False  # Redis answered since the fallback limits were last set
        self._local.set_limits(*self._fallback_limits())  # nothing seen yet

    @property
    def on_local_limits(self) -> bool:
        """True while Redis is unreachable and the local fallback limits apply."""
        return self._clock() < self._local_until

    @property
    def local_limits(self) -> tuple[int | None, int | None]:
        """The requests and tokens this process allows itself while Redis is away."""
        return self._local.request_limit, self._local.token_limit

    def _fallback_limits(self) -> tuple[int | None, int | None]:
        own_requests, own_tokens = self._local.used()
        requests, tokens = self._seen
        fraction = self.store.local_fraction
        return (
            _share(self.request_limit, fraction, own_requests, requests),
            _share(self.token_limit, fraction, own_tokens, tokens),
        )

    def _unavailable(self, exc: BaseException) -> None:
        """Apply the ``on_error`` policy (raises when failing closed)."""
        if self.store.on_error == "fail":
            raise LimiterUnavailableError(
                f"the shared rate limit in Redis is unreachable: {type(exc).__name__}"
            ) from exc
        if self._fresh:  # what this process knows of the fleet, as Redis went away
            self._fresh = False
            self._local.set_limits(*self._fallback_limits())
        _log.warning(
            "Redis rate limit unreachable (%s); using local limits %s for %.1f s",
            type(exc).__name__,
            self.local_limits,
            self.store.retry_interval,
        )
        self._local_until = self._clock() + self.store.retry_interval
        self._guard_until = self._local_until + self._period

    async def reserve(self, tokens: int) -> tuple[float, Ticket]:
        now = self._clock()
        if now < self._paused_until:
            return self._paused_until - now, None
        if now >= self._local_until:
            if now < self._guard_until:  # back from local limits: keep to them a period
                wait = self._local.wait_now(tokens)
                if wait > 0:
                    return wait, None
            args = [*self._limits, tokens, self._margin_us]
            try:
                reply: Any = await self._reserve(self._reserve_keys, args)
            except self._errors as exc:
                self._unavailable(exc)
            else:
                wait_us, stamp, requests, used, seq = (int(value) for value in reply)
                self._seen = (requests, used)
                self._fresh = True
                if wait_us > 0:
                    return wait_us / _US, None
                request = str(seq) if self.request_limit else ""
                token = f"{tokens}:{seq}" if self.token_limit else ""
                return 0.0, _Admitted(stamp, request, token, self._local.record(tokens))
        return self._local.reserve_now(tokens)

    async def settle(self, ticket: Ticket, delta: int) -> None:
        if type(ticket) is not _Admitted:
            self._local.settle_now(ticket, delta)
            return
        self._local.settle_now(ticket.mirror, delta)
        args = (ticket.stamp, ticket.request, ticket.token, delta, self._ttl_ms)
        try:
            ticket.stamp = int(await self._settle(self._settle_keys, args))
        except self._errors as exc:
            _log.warning("could not settle the shared admission: %s", type(exc).__name__)

    async def correct(self, ticket: Ticket, delta: int) -> None:
        if type(ticket) is not _Admitted:
            self._local.correct_now(ticket, delta)
            return
        self._local.correct_now(ticket.mirror, delta)
        if ticket.token:
            try:
                await self._correct(self._correct_keys, (ticket.token, delta, self._ttl_ms))
            except self._errors as exc:
                _log.warning("could not correct the shared token count: %s", type(exc).__name__)

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
