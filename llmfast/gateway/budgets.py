"""Tenants' budgets: each tenant's money or token limit, checked before every attempt
and charged with its actual usage (llmfast's [`Budget`][llmfast.layers.budget.Budget]).

A budget in dollars needs the price of the model actually called, which only a
deployment knows (a model alias may fail over to a dearer one), so the check sits in
front of each deployment; a tenant's one ``Budget`` is shared by all of them (and, with
Redis, by every gateway process).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from llmfast.gateway.config import KeyConfig
from llmfast.layers.budget import Budget
from llmfast.limits.redis_budget import RedisLimitStore
from llmfast.transport import Request, Response, Transport

__all__ = ["TenantBudgets", "tenant_budgets"]


def tenant_budgets(keys: Mapping[str, KeyConfig], redis_url: str | None) -> dict[str, Budget]:
    """The budget of every tenant that has one."""
    budgets: dict[str, Budget] = {}
    for name, key in keys.items():
        if key.budget_usd is None and key.budget_tokens is None:
            continue
        store = None
        if redis_url is not None:
            store = RedisLimitStore(redis_url, key="llmfast:gateway:budgets")
        budgets[name] = Budget(
            usd=key.budget_usd,
            tokens=key.budget_tokens,
            period=key.budget_period,
            name=f"tenant:{name}",
            store=store,
        )
    return budgets


class TenantBudgets:
    """In front of one deployment: the calling tenant's budget, when it has one."""

    def __init__(self, inner: Transport, budgets: Mapping[str, Budget]) -> None:
        self.inner = inner
        self._layers = {tenant: budget(inner) for tenant, budget in budgets.items()}

    async def send(self, request: Request, /) -> Response:
        context = request.context
        labels = context.get("gateway") if context else None
        layer = self._layers.get(labels[1]) if labels else None
        return await (layer if layer is not None else self.inner).send(request)

    async def aclose(self) -> None:
        for layer in self._layers.values():
            with contextlib.suppress(Exception):
                await layer.aclose()
        await self.inner.aclose()

    def __getattr__(self, name: str) -> Any:  # model, bind, warmup... of the deployment
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"TenantBudgets → {self.inner!r}"
