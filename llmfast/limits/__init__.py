"""The machinery behind ``llmfast.layers.RateLimit``: windows, budgets, the wait
queue, token estimates and the providers' rate-limit headers.

The names are loaded on first use: the retry layer (in every default ``Client``)
needs only ``headers``, so ``import llmfast`` does not pay for the rest.
"""

from typing import TYPE_CHECKING

from llmfast._lazy import lazy_getattr

_LAZY = {
    "Admission": "llmfast.limits.admission",
    "LimitBudget": "llmfast.limits.budget",
    "CharEstimator": "llmfast.limits.estimate",
    "LocalBudget": "llmfast.limits.budget",
    "RateLimitHeaders": "llmfast.limits.headers",
    "RedisBudget": "llmfast.limits.redis_budget",
    "RedisLimitStore": "llmfast.limits.redis_budget",
    "ServerHints": "llmfast.limits.hints",
    "SlidingWindow": "llmfast.limits.window",
    "TiktokenEstimator": "llmfast.limits.estimate",
    "TokenEstimator": "llmfast.limits.estimate",
    "default_estimator": "llmfast.limits.estimate",
    "parse_duration": "llmfast.limits.headers",
    "parse_rate_limit_headers": "llmfast.limits.headers",
    "parse_rfc3339": "llmfast.limits.headers",
}

if TYPE_CHECKING:
    from llmfast.limits.admission import Admission
    from llmfast.limits.budget import LimitBudget, LocalBudget
    from llmfast.limits.estimate import (
        CharEstimator,
        TiktokenEstimator,
        TokenEstimator,
        default_estimator,
    )
    from llmfast.limits.headers import (
        RateLimitHeaders,
        parse_duration,
        parse_rate_limit_headers,
        parse_rfc3339,
    )
    from llmfast.limits.hints import ServerHints
    from llmfast.limits.redis_budget import RedisBudget, RedisLimitStore
    from llmfast.limits.window import SlidingWindow


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "Admission",
    "CharEstimator",
    "LimitBudget",
    "LocalBudget",
    "RateLimitHeaders",
    "RedisBudget",
    "RedisLimitStore",
    "ServerHints",
    "SlidingWindow",
    "TiktokenEstimator",
    "TokenEstimator",
    "default_estimator",
    "parse_duration",
    "parse_rate_limit_headers",
    "parse_rfc3339",
]
