"""The budget layer: stops a call *before* an attempt that would overspend.

::

    Client(model="gpt-4o-mini", layers=[Retry(), Budget(usd=5.0, period=86_400)])

Before each attempt the request's cost is estimated (the token estimate of
``llmfast.limits.estimate``, its completion part at most ``max_tokens``; times the
model's [`Price`][llmfast.prices.Price] for a budget in money) and reserved at once;
if it does not fit, ``BudgetExceededError`` is raised and nothing is sent. When the
attempt ends, the reservation is corrected to its actual usage (a failure the server
reported no usage for costs nothing; a stream closed before its usage keeps the
estimate). So concurrent calls cannot all pass on the same headroom, and spending goes
over the limit by at most the estimates' errors. Put it inside ``Retry`` (after it in
the list) so every attempt is checked.

A budget is per client (the config object: give several clients the same ``Budget``
to share it), per tenant (``per="user"`` keys it by the request's ``user``, or pass a
function of the request), and named (``name``): with a ``RedisLimitStore`` every
process using the same store key and name shares it. ``period`` (seconds) makes it a
budget per fixed window of wall-clock time (``86_400``: per UTC day); ``None``: in total.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from llmfast.errors import BudgetExceededError, ConfigurationError
from llmfast.events import emit
from llmfast.limits.estimate import TokenEstimator, default_estimator
from llmfast.limits.spend import LocalSpend, RedisSpend, SpendStore
from llmfast.prices import Price, Prices
from llmfast.transport import Request, Response, Transport, TransportLayer
from llmfast.types import ChatRequest, Usage
from llmfast.usage import error_usage

if TYPE_CHECKING:
    from llmfast.limits.redis_budget import RedisLimitStore

__all__ = ["Budget", "BudgetLayer"]

_NANO = 1_000_000_000  # a money budget counts nano-dollars
_DEFAULT_COMPLETION = 256


class Budget:
    """Configuration of a budget (in dollars or in tokens); ``Budget(...)(inner)`` builds
    the layer.

    Args:
        usd: the limit in dollars (needs a price for every model called).
        tokens: the limit in tokens (input plus output); give one of the two.
        period: seconds per budget window (fixed, wall-clock aligned); ``None``: in total.
        name: names the budget (its key in a shared store).
        per: ``"user"`` (one budget per ``ChatRequest.user``, the tenant key) or a
            function returning the tenant key of a request; ``None``: one budget.
        prices: for ``usd``: your prices and/or the built-in table (see
            [`Prices`][llmfast.prices.Prices]; default ``Prices()``).
        estimator: the token estimator (default: the rate limiter's).
        store: a ``RedisLimitStore`` to share the budget with a fleet; ``None``: this
            process only.
        clock: wall-clock seconds (``time.time``), injectable for tests.
    """

    def __init__(
        self,
        *,
        usd: float | None = None,
        tokens: int | None = None,
        period: float | None = None,
        name: str = "default",
        per: Literal["user"] | Callable[[Request], str | None] | None = None,
        prices: Prices | Mapping[str, Price | tuple[float, float]] | None = None,
        estimator: TokenEstimator | None = None,
        store: RedisLimitStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (usd is None) == (tokens is None):
            raise ConfigurationError("Budget needs one limit: usd=... or tokens=...")
        limit = usd if usd is not None else tokens
        assert limit is not None
        if not (math.isfinite(limit) and limit >= 0) or (period is not None and period <= 0):
            raise ConfigurationError("a budget's limit must be >= 0 and its period > 0")
        self.unit = "usd" if usd is not None else "tokens"
        self.limit = float(limit)
        self.period = period
        self.name = name
        self.per = per
        self.prices = None
        if usd is not None:
            self.prices = prices if isinstance(prices, Prices) else Prices(prices)
        self.estimator = estimator or default_estimator()
        self.clock = clock
        self.store = store
        self._spend: SpendStore | None = None if store is not None else LocalSpend()

    def __call__(self, inner: Transport) -> BudgetLayer:
        return BudgetLayer(inner, self)

    def spend_store(self) -> SpendStore:
        """Where this budget's spending is kept (made on first use)."""
        if self._spend is None:
            assert self.store is not None
            self._spend = RedisSpend(self.store, time.monotonic)
        return self._spend

    def window(self, tenant: str | None = None) -> tuple[str, float | None]:
        """The counter a call of ``tenant`` is charged to now, and seconds until the
        window resets (``None`` for a budget in total)."""
        key = self.name if tenant is None else f"{self.name}:{tenant}"
        if self.period is None:
            return key + ":total", None
        now = self.clock()
        window = int(now // self.period)
        return f"{key}:{window}", (window + 1) * self.period - now

    async def spent(self, tenant: str | None = None) -> float:
        """What was spent (and is reserved by attempts in flight) in the current window,
        in dollars or tokens."""
        key, _ = self.window(tenant)
        value = await self.spend_store().spent(key)
        return value / _NANO if self.unit == "usd" else float(value)

    def __repr__(self) -> str:
        period = "in total" if self.period is None else f"per {self.period:g} s"
        return f"Budget({self.limit:g} {self.unit} {period}, name={self.name!r})"


class BudgetLayer(TransportLayer):
    """Checks and charges a [`Budget`][llmfast.layers.budget.Budget] around each attempt."""

    def __init__(self, inner: Transport, config: Budget) -> None:
        super().__init__(inner)
        self.config = config
        self._limit = self._units(config.limit)
        self._pending: set[asyncio.Task[None]] = set()

    def describe(self) -> str:
        return repr(self.config)

    def _units(self, amount: float) -> int:
        return math.ceil(amount * _NANO) if self.config.unit == "usd" else math.ceil(amount)

    def key(self, request: Request) -> tuple[str, float | None]:
        """The counter this request is charged to, and seconds until it resets."""
        per = self.config.per
        tenant = None
        if per == "user":
            tenant = getattr(request.body, "user", None)
        elif per is not None:
            tenant = per(request)
        return self.config.window(tenant)

    def estimate(self, request: Request) -> int:
        """The attempt's estimated cost in the budget's units (nano-dollars or tokens)."""
        config = self.config
        tokens = config.estimator(request.body)
        if config.prices is None:
            return tokens
        body = request.body
        completion = 0
        if type(body) is ChatRequest:
            wanted = body.max_completion_tokens or body.max_tokens
            if wanted is None:
                wanted = getattr(config.estimator, "completion_tokens", _DEFAULT_COMPLETION)
            completion = min(int(wanted) * (body.n or 1), tokens)
        return self._money(Usage(tokens - completion, completion), body.model)

    def _money(self, usage: Usage, model: str) -> int:
        assert self.config.prices is not None
        cost = self.config.prices.cost(usage, model)
        if cost is None:
            raise ConfigurationError(
                f"no price for {model!r}: a budget in dollars needs one (Prices or llmfast[prices])"
            )
        return math.ceil(cost * _NANO)

    def actual(self, usage: Any, model: str, estimate: int) -> int:
        """What reported ``usage`` costs in the budget's units (``estimate`` if unknown)."""
        if usage is None:
            return estimate
        reported: Usage = usage
        if type(usage) is not Usage:  # embeddings
            reported = Usage(getattr(usage, "prompt_tokens", 0) or 0)
        if self.config.prices is None:
            return reported.prompt_tokens + reported.completion_tokens
        cost = self.config.prices.cost(reported, model)
        return estimate if cost is None else math.ceil(cost * _NANO)

    async def send(self, request: Request, /) -> Response:
        store = self.config.spend_store()
        key, resets_in = self.key(request)
        ttl = 0.0 if self.config.period is None else 2 * self.config.period
        needed = self.estimate(request)
        admitted, spent = await store.reserve(key, needed, self._limit, ttl)
        if not admitted:
            scale = _NANO if self.config.unit == "usd" else 1
            if request.on_event is not None:
                emit(request, "budget.exceeded", budget=key, spent=spent / scale)
            raise BudgetExceededError(
                key,
                unit=self.config.unit,
                limit=self.config.limit,
                spent=spent / scale,
                needed=needed / scale,
                resets_in=resets_in,
            )
        model = request.body.model
        try:
            response = await self.inner.send(request)
        except BaseException as exc:
            reported = error_usage(exc)
            spent_now = 0 if reported is None else self.actual(reported, model, needed)
            await self._charge(store, key, spent_now - needed, ttl)
            raise
        if not response.stream:
            usage = getattr(response.result, "usage", None)
            await self._charge(store, key, self.actual(usage, model, needed) - needed, ttl)
            return response
        return Response(
            request,
            status=response.status,
            headers=response.headers,
            chunks=self._charging(response, store, key, needed, ttl, model),
        )

    async def _charging(
        self, response: Response, store: SpendStore, key: str, needed: int, ttl: float, model: str
    ) -> AsyncIterator[Any]:
        usage = None
        try:
            async for chunk in response:
                if chunk.usage is not None:
                    usage = chunk.usage
                yield chunk
        except BaseException as exc:
            usage = usage or error_usage(exc)
            raise
        finally:
            await response.aclose()
            await self._charge(store, key, self.actual(usage, model, needed) - needed, ttl)

    async def _charge(self, store: SpendStore, key: str, delta: int, ttl: float) -> None:
        """Correct the reservation; if cancelled meanwhile, finish it in a task."""
        if not delta:
            return
        task = asyncio.ensure_future(store.charge(key, delta, ttl))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        await asyncio.shield(task)

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        store = self.config._spend
        if store is not None:
            await store.aclose()
        await super().aclose()
