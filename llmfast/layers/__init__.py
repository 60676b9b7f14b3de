"""The layers that wrap a backend, outermost first in ``Client(layers=[...])``.

Each name here is a layer's configuration; calling it with the transport inside
builds the layer: ``Retry(max_attempts=3)(inner)``. A typical stack::

    Client(model="m", layers=[Cache(), Coalesce(), Retry(), RateLimit(rpm=500)])

The names are loaded on first use, so that ``import llmfast`` (which needs only the
retry layer, the default ``Client`` stack) stays fast.
"""

from typing import TYPE_CHECKING

from llmfast._lazy import lazy_getattr

_LAZY = {
    "RETRY_STATUSES": "llmfast.layers.retry_policy",
    "BatchEmbed": "llmfast.layers.batch_embed",
    "BatchEmbedLayer": "llmfast.layers.batch_embed",
    "Budget": "llmfast.layers.budget",
    "BudgetLayer": "llmfast.layers.budget",
    "Cache": "llmfast.layers.cache",
    "CacheEntry": "llmfast.layers.cache",
    "CacheLayer": "llmfast.layers.cache",
    "CacheMode": "llmfast.layers.cache",
    "CacheStore": "llmfast.layers.cache_stores",
    "CircuitBreaker": "llmfast.layers.breaker",
    "CircuitBreakerLayer": "llmfast.layers.breaker",
    "Coalesce": "llmfast.layers.coalesce",
    "CoalesceLayer": "llmfast.layers.coalesce",
    "MemoryStore": "llmfast.layers.cache_stores",
    "RateLimit": "llmfast.layers.ratelimit",
    "RateLimitLayer": "llmfast.layers.ratelimit",
    "RedisCacheStore": "llmfast.layers.cache_stores",
    "RedisFlightStore": "llmfast.layers.flight_store",
    "RedisLimitStore": "llmfast.limits",
    "Retry": "llmfast.layers.retry",
    "RetryLayer": "llmfast.layers.retry",
    "RetryPolicy": "llmfast.layers.retry_policy",
    "TwoLevelStore": "llmfast.layers.cache_stores",
    "backend_identity": "llmfast.layers.keys",
    "canonical_request": "llmfast.layers.keys",
    "is_deterministic": "llmfast.layers.keys",
    "request_key": "llmfast.layers.keys",
}

if TYPE_CHECKING:
    from llmfast.layers.batch_embed import BatchEmbed, BatchEmbedLayer
    from llmfast.layers.breaker import CircuitBreaker, CircuitBreakerLayer
    from llmfast.layers.budget import Budget, BudgetLayer
    from llmfast.layers.cache import Cache, CacheEntry, CacheLayer, CacheMode
    from llmfast.layers.cache_stores import (
        CacheStore,
        MemoryStore,
        RedisCacheStore,
        TwoLevelStore,
    )
    from llmfast.layers.coalesce import Coalesce, CoalesceLayer
    from llmfast.layers.flight_store import RedisFlightStore
    from llmfast.layers.keys import (
        backend_identity,
        canonical_request,
        is_deterministic,
        request_key,
    )
    from llmfast.layers.ratelimit import RateLimit, RateLimitLayer
    from llmfast.layers.retry import Retry, RetryLayer
    from llmfast.layers.retry_policy import RETRY_STATUSES, RetryPolicy
    from llmfast.limits import RedisLimitStore


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "RETRY_STATUSES",
    "BatchEmbed",
    "BatchEmbedLayer",
    "Budget",
    "BudgetLayer",
    "Cache",
    "CacheEntry",
    "CacheLayer",
    "CacheMode",
    "CacheStore",
    "CircuitBreaker",
    "CircuitBreakerLayer",
    "Coalesce",
    "CoalesceLayer",
    "MemoryStore",
    "RateLimit",
    "RateLimitLayer",
    "RedisCacheStore",
    "RedisFlightStore",
    "RedisLimitStore",
    "Retry",
    "RetryLayer",
    "RetryPolicy",
    "TwoLevelStore",
    "backend_identity",
    "canonical_request",
    "is_deterministic",
    "request_key",
]
