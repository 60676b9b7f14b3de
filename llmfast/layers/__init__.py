"""The layers that wrap a backend, outermost first in ``Client(layers=[...])``.

Each name here is a layer's configuration; calling it with the transport inside
builds the layer: ``Retry(max_attempts=3)(inner)``.
"""

from llmfast.layers.breaker import CircuitBreaker, CircuitBreakerLayer
from llmfast.layers.retry import Retry, RetryLayer
from llmfast.layers.retry_policy import RETRY_STATUSES, RetryPolicy

__all__ = [
    "RETRY_STATUSES",
    "CircuitBreaker",
    "CircuitBreakerLayer",
    "Retry",
    "RetryLayer",
    "RetryPolicy",
]
