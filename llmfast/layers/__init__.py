"""The layers that wrap a backend, outermost first in ``Client(layers=[...])``.

Each name here is a layer's configuration; calling it with the transport inside
builds the layer: ``Retry(max_attempts=3)(inner)``. A typical stack::

    Client(model="m", layers=[Cache(), Coalesce(), Retry(), RateLimit(rpm=500)])
"""

from llmfast.layers.batch_embed import BatchEmbed, BatchEmbedLayer
from llmfast.layers.breaker import CircuitBreaker, CircuitBreakerLayer
from llmfast.layers.cache import Cache, CacheEntry, CacheLayer, CacheMode
from llmfast.layers.cache_stores import CacheStore, MemoryStore, RedisCacheStore, TwoLevelStore
from llmfast.layers.coalesce import Coalesce, CoalesceLayer
from llmfast.layers.keys import backend_identity, canonical_request, is_deterministic, request_key
from llmfast.layers.ratelimit import RateLimit, RateLimitLayer
from llmfast.layers.retry import Retry, RetryLayer
from llmfast.layers.retry_policy import RETRY_STATUSES, RetryPolicy
from llmfast.limits import RedisLimitStore

__all__ = [
    "RETRY_STATUSES",
    "BatchEmbed",
    "BatchEmbedLayer",
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
