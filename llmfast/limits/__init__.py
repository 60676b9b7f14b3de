"""The machinery behind ``llmfast.layers.RateLimit``: windows, budgets, the wait
queue, token estimates and the providers' rate-limit headers."""

from llmfast.limits.admission import Admission
from llmfast.limits.budget import Budget, LocalBudget
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

__all__ = [
    "Admission",
    "Budget",
    "CharEstimator",
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
