"""What the gateway calls: one llmfast [`Client`][llmfast.Client] per model alias (its
deployments behind a [`Router`][llmfast.Router], wrapped in the model's layers), and
per tenant a rate limit in front of them all.

A call travels ``tenant limit → model layers (cache, coalesce, retry, limit) → router
→ circuit breaker → deployment``: the cache and the in-flight calls of a model are
shared by every tenant; a tenant's own quota counts every call it makes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from llmfast.client import Client
from llmfast.errors import NotFoundError
from llmfast.gateway.budgets import TenantBudgets, tenant_budgets
from llmfast.gateway.config import Deployment, GatewayConfig, KeyConfig, ModelConfig, env_secret
from llmfast.layers import (
    Cache,
    CacheStore,
    CircuitBreaker,
    Coalesce,
    MemoryStore,
    RateLimit,
    RedisCacheStore,
    RedisFlightStore,
    RedisLimitStore,
    Retry,
    TwoLevelStore,
)
from llmfast.layers.budget import Budget
from llmfast.pool import Timeouts
from llmfast.providers import backend_for
from llmfast.router import Route, Router
from llmfast.transport import Layer, Request, Response, Transport

__all__ = ["Fleet", "UnknownModelError", "forwards_events"]


class UnknownModelError(NotFoundError):
    """The request names a model the gateway does not serve (or the key may not use)."""

    def __init__(self, model: str) -> None:
        message = f"The model `{model}` does not exist or you do not have access to it."
        super().__init__(404, message, body={"code": "model_not_found"})
        self.model = model


class _Models:
    """The innermost transport of a tenant: sends each request to its model's client."""

    def __init__(self, clients: Mapping[str, Client]) -> None:
        self._clients = clients

    async def send(self, request: Request, /) -> Response:
        client = self._clients.get(request.body.model)
        if client is None:
            raise UnknownModelError(request.body.model)
        return await client.send(request)

    async def aclose(self) -> None:
        """The clients are the fleet's, closed by it."""

    def __repr__(self) -> str:
        return f"models({', '.join(self._clients)})"


class Fleet:
    """The model clients and the tenants' limiters of one configuration.

    With ``server.redis_url_env`` set, every limit (the models' and the tenants'),
    every model's cache and its calls in flight (coalescing) live in that Redis, shared
    by all gateway processes using it.
    """

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.redis_url = env_secret(config.server.redis_url_env)
        self.clients: dict[str, Client] = {}
        budgets = tenant_budgets(config.keys, self.redis_url)
        try:
            for alias, model in config.models.items():
                self.clients[alias] = _model_client(alias, model, self.redis_url, budgets)
        except BaseException:
            self._close_now()
            raise
        models = _Models(self.clients)
        self._tenants: dict[str, Transport] = {}
        for name, key in config.keys.items():
            layer = _tenant_limit(name, key, self.redis_url)
            self._tenants[name] = layer(models) if layer is not None else models
        self._open: Transport = models
        self._forwarding = frozenset(
            alias for alias, model in config.models.items() if forwards_events(model)
        )

    def forwards_events(self, model: str) -> bool:
        """Whether ``model``'s streams may forward the upstream's event bytes (see
        ``forwards_events``)."""
        return model in self._forwarding

    def transport_for(self, tenant: str) -> Transport:
        """What a tenant's calls go through (its limit, if it has one, then the models)."""
        return self._tenants.get(tenant, self._open)

    def timeout_of(self, model: str) -> float | None:
        config = self.config.models.get(model)
        return config.timeout if config is not None else None

    def ready(self) -> dict[str, bool]:
        """Per model: whether at least one deployment's circuit lets calls through."""
        states: dict[str, bool] = {}
        for alias, client in self.clients.items():
            router = client.backend
            breakers = router.breakers if isinstance(router, Router) else []
            states[alias] = not breakers or any(b.available() for b in breakers)
        return states

    async def aclose(self) -> None:
        for transport in self._tenants.values():
            with contextlib.suppress(Exception):
                await transport.aclose()
        for client in self.clients.values():
            with contextlib.suppress(Exception):
                await client.aclose()

    def _close_now(self) -> None:
        """Clients built before a failure hold no connections yet: forget them."""
        self.clients.clear()


def forwards_events(model: ModelConfig) -> bool:
    """The fast path's condition: every deployment of ``model`` speaks OpenAI's format
    (the OpenAI route's own) and no layer of it reads each chunk (no cache, no
    coalescing). Its streams are then requested with ``raw_events`` (see
    ``llmfast.raw_events``) and forwarded as the upstream's event payloads."""
    return (
        model.cache is False
        and not model.coalesce
        and all(d.provider == "openai" for d in model.deployments)
    )


def _model_client(
    alias: str, model: ModelConfig, redis_url: str | None, budgets: Mapping[str, Budget]
) -> Client:
    routes = [
        Route(
            _deployment(deployment, budgets),
            model=deployment.model,
            weight=deployment.weight,
            priority=deployment.priority,
        )
        for deployment in model.deployments
    ]
    breaker = model.breaker
    if breaker is False:
        circuit = CircuitBreaker(consecutive=2**62, min_calls=2**62)
    elif breaker is True:
        circuit = CircuitBreaker()
    else:
        circuit = CircuitBreaker(consecutive=breaker.consecutive, cooldown=breaker.cooldown)
    router = Router(routes, strategy=model.strategy, breaker=circuit)
    timeouts = Timeouts(idle=model.idle_timeout, first_chunk=model.first_chunk_timeout)
    return Client(router, layers=_model_layers(alias, model, redis_url), timeouts=timeouts)


def _deployment(deployment: Deployment, budgets: Mapping[str, Budget]) -> Transport:
    backend: Transport = backend_for(
        deployment.provider,
        base_url=deployment.base_url,
        api_key=env_secret(deployment.api_key_env),
        model=deployment.model,
    )
    return TenantBudgets(backend, budgets) if budgets else backend


def _model_layers(alias: str, model: ModelConfig, redis_url: str | None) -> list[Layer]:
    layers: list[Layer] = []
    cache = model.cache
    if cache is not False:
        ttl = 600.0 if cache is True else cache.ttl
        entries = 10_000 if cache is True else cache.max_entries
        store: CacheStore = MemoryStore(max_entries=entries)
        if redis_url is not None:
            shared = RedisCacheStore(redis_url, namespace=f"llmfast:gateway:cache:{alias}")
            store = TwoLevelStore(store, shared)
        layers.append(Cache(store=store, ttl=ttl))
    if model.coalesce:
        flights = None
        if redis_url is not None:
            flights = RedisFlightStore(redis_url, namespace=f"llmfast:gateway:coalesce:{alias}")
        layers.append(Coalesce(store=flights))
    retry = model.retry
    attempts = retry if isinstance(retry, int) else retry.max_attempts
    if attempts > 1:
        layers.append(Retry(max_attempts=attempts))
    if model.rpm or model.tpm or model.concurrency:
        layers.append(
            RateLimit(
                rpm=model.rpm,
                tpm=model.tpm,
                concurrency=model.concurrency,
                store=_limit_store(redis_url, f"model:{alias}"),
            )
        )
    return layers


def _tenant_limit(name: str, key: KeyConfig, redis_url: str | None) -> Layer | None:
    if not (key.rpm or key.tpm or key.concurrency):
        return None
    return RateLimit(
        rpm=key.rpm,
        tpm=key.tpm,
        concurrency=key.concurrency,
        max_wait=key.max_wait,
        adaptive=False,
        store=_limit_store(redis_url, f"tenant:{name}"),
    )


def _limit_store(redis_url: str | None, name: str) -> RedisLimitStore | None:
    """The shared budget named ``name`` (None: this process alone)."""
    if redis_url is None:
        return None
    return RedisLimitStore(redis_url, key=f"llmfast:gateway:{name}")
