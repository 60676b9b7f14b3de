"""Where a ``Budget`` keeps what was spent: in this process, or in Redis for a fleet.

A spend store answers atomically: may ``amount`` more be spent under ``limit`` in this
window? If so it is reserved at once (so concurrent attempts cannot all pass on the
same headroom) and corrected later by ``charge`` with the actual usage. Amounts are
integers: tokens, or nano-dollars for a budget in money.

In Redis each check is one Lua script (read, compare, add, in one step), in the same
key space and under the same ``RedisLimitStore`` settings as the shared rate limits,
with the same policy when Redis is unreachable: ``on_error="fail"`` raises
``LimiterUnavailableError`` (fail closed: the fleet never overspends); ``"local"``
spends against a counter in this process for ``retry_interval`` seconds, allowing
``local_fraction`` of the limit (default 10%) per window, then tries Redis again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from llmfast.errors import LimiterUnavailableError

if TYPE_CHECKING:
    from llmfast.limits.redis_budget import RedisLimitStore

__all__ = ["CHARGE", "RESERVE_SPEND", "LocalSpend", "RedisSpend", "SpendStore"]

_log = logging.getLogger("llmfast.budget")
_DEFAULT_LOCAL_FRACTION = 0.1

RESERVE_SPEND = """
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[2])
if spent + amount > tonumber(ARGV[1]) then
  return {0, spent}
end
spent = redis.call('INCRBY', KEYS[1], amount)
local ttl = tonumber(ARGV[3])
if ttl > 0 and redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {1, spent}
"""
"""KEYS: the window's counter. ARGV: limit, amount, ttl (ms, 0: none).
Returns ``{admitted, spent}`` (spent after the reservation when admitted)."""

CHARGE = """
local spent = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if ttl > 0 and redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return spent
"""
"""KEYS: the window's counter. ARGV: delta (may be negative), ttl (ms, 0: none)."""


class SpendStore(Protocol):
    """What a ``Budget`` layer needs from where spending is kept."""

    async def reserve(self, key: str, amount: int, limit: int, ttl: float) -> tuple[bool, int]:
        """``(True, spent)`` with ``amount`` reserved, or ``(False, spent)`` taking nothing."""
        ...

    async def charge(self, key: str, delta: int, ttl: float) -> None:
        """Correct a reservation by ``delta`` (the actual minus the estimate)."""
        ...

    async def spent(self, key: str) -> int:
        """What the window's counter holds now."""
        ...

    async def aclose(self) -> None:
        """Release connections the store opened."""
        ...


class LocalSpend:
    """Counters in this process (one per budget, tenant and window)."""

    def __init__(self, fraction: float = 1.0) -> None:
        self.fraction = fraction
        self._spent: dict[str, int] = {}

    def reserve_now(self, key: str, amount: int, limit: int) -> tuple[bool, int]:
        spent = self._spent.get(key, 0)
        if spent + amount > int(limit * self.fraction):
            return False, spent
        self._spent[key] = spent = spent + amount
        return True, spent

    async def reserve(self, key: str, amount: int, limit: int, ttl: float) -> tuple[bool, int]:
        return self.reserve_now(key, amount, limit)

    async def charge(self, key: str, delta: int, ttl: float) -> None:
        self._spent[key] = self._spent.get(key, 0) + delta

    async def spent(self, key: str) -> int:
        return self._spent.get(key, 0)

    def forget_before(self, prefix: str, keep: str) -> None:
        """Drop counters of ``prefix`` other than ``keep`` (windows that are over)."""
        for key in [k for k in self._spent if k.startswith(prefix) and k != keep]:
            del self._spent[key]

    async def aclose(self) -> None:
        return None


class RedisSpend:
    """Counters in Redis, shared by every process naming the same ``store.key``."""

    def __init__(self, store: RedisLimitStore, clock: Callable[[], float]) -> None:
        from redis.exceptions import RedisError

        from llmfast.limits.redis_budget import _connect

        self.store = store
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)
        self._client, self._owned = _connect(store)
        self._reserve = self._client.register_script(RESERVE_SPEND)
        self._charge = self._client.register_script(CHARGE)
        self._prefix = f"llmfast:budget:{{{store.key}}}:"
        self._clock = clock
        fraction = store.local_fraction or _DEFAULT_LOCAL_FRACTION
        self._local = LocalSpend(fraction)
        self._local_until = float("-inf")

    @property
    def on_local_limits(self) -> bool:
        """True while Redis is unreachable and the local fallback applies."""
        return self._clock() < self._local_until

    def _unavailable(self, exc: BaseException) -> None:
        if self.store.on_error == "fail":
            raise LimiterUnavailableError(
                f"the shared budget in Redis is unreachable: {type(exc).__name__}"
            ) from exc
        _log.warning(
            "Redis budget unreachable (%s); spending against %.0f%% of the limit locally"
            " for %.1f s",
            type(exc).__name__,
            self._local.fraction * 100,
            self.store.retry_interval,
        )
        self._local_until = self._clock() + self.store.retry_interval

    async def reserve(self, key: str, amount: int, limit: int, ttl: float) -> tuple[bool, int]:
        if not self.on_local_limits:
            args = [limit, amount, round(ttl * 1000)]
            try:
                reply: Any = await self._reserve([self._prefix + key], args)
            except self._errors as exc:
                self._unavailable(exc)
            else:
                return bool(int(reply[0])), int(reply[1])
        return self._local.reserve_now(key, amount, limit)

    async def charge(self, key: str, delta: int, ttl: float) -> None:
        if not delta:
            return
        if not self.on_local_limits:
            try:
                await self._charge([self._prefix + key], [delta, round(ttl * 1000)])
                return
            except self._errors as exc:
                _log.warning("Redis budget unreachable to charge %s: %s", key, type(exc).__name__)
        await self._local.charge(key, delta, ttl)

    async def spent(self, key: str) -> int:
        try:
            value = await self._client.get(self._prefix + key)
        except self._errors as exc:
            self._unavailable(exc)
            return await self._local.spent(key)
        return int(value or 0)

    async def aclose(self) -> None:
        if self._owned:
            await self._client.aclose()
