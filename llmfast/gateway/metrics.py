"""``GET /metrics``: the gateway's figures in Prometheus' text format, per model and
tenant (with ``prometheus-client``, from the ``gateway`` extra).

Requests (by endpoint and status), errors (by code), latency and time-to-first-chunk
histograms, tokens in and out, and what the layers did — cache hits and misses,
calls coalesced into one, retries, failovers, time waited in limiters — read from
llmfast's event hook (``llmfast.events``). Labels never hold keys: a tenant is its
name in the configuration.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric

from llmfast.events import Event, EventHook, only_events
from llmfast.gateway.figures import Spread, Tally
from llmfast.types import Usage

__all__ = ["CONTENT_TYPE", "GatewayMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# The gateway's own error codes; any other (an upstream's) is counted by its status.
_OWN_CODES = frozenset(
    {
        "budget_exceeded",
        "gateway_error",
        "invalid_api_key",
        "invalid_json",
        "invalid_request",
        "model_not_found",
        "rate_limit_exceeded",
        "request_too_large",
        "too_large",
        "upstream_auth",
        "upstream_error",
        "upstream_timeout",
        "upstream_unavailable",
    }
)
_LAYER_EVENTS = {
    "cache.hit": "cache_hit",
    "cache.miss": "cache_miss",
    "coalesce.join": "coalesced",
    "coalesce.keep": "kept_for_followers",
    "retry": "retry",
    "fallback": "failover",
}


class GatewayMetrics:
    """The gateway's Prometheus collectors, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("model", "tenant")
        # Counted on every request: plain figures (see ``llmfast.gateway.figures``).
        self.requests = Tally(
            "llmfast_gateway_requests",
            "Requests answered, by endpoint and HTTP status.",
            ("endpoint", *labels, "status"),
        )
        self.latency = Spread(
            "llmfast_gateway_request_seconds",
            "Time from a request's arrival to the end of its answer.",
            ("endpoint", *labels),
            _LATENCY_BUCKETS,
        )
        self.first_chunk = Spread(
            "llmfast_gateway_first_chunk_seconds",
            "Time from a streamed request's arrival to its first chunk.",
            labels,
            _LATENCY_BUCKETS,
        )
        self.tokens = Tally(
            "llmfast_gateway_tokens",
            "Tokens the upstreams reported (cache hits left out), by direction (input, output).",
            (*labels, "direction"),
        )
        # Counted when something goes wrong or a layer acts: prometheus-client's own.
        self.errors = Counter(
            "llmfast_gateway_errors",
            "Calls that failed, before or during their answer, by error code (the "
            "gateway's own, or http_<status> for an upstream's).",
            (*labels, "code"),
            registry=None,
        )
        self.layer_events = Counter(
            "llmfast_gateway_layer_events",
            "What the layers did: cache_hit, cache_miss, coalesced, kept_for_followers, "
            "retry, failover.",
            (*labels, "event"),
            registry=None,
        )
        self.limiter_wait = Histogram(
            "llmfast_gateway_limiter_wait_seconds",
            "Time calls waited in a rate limiter before being let through.",
            labels,
            buckets=(0.001, 0.01, 0.1, 0.5, 1, 5, 30),
            registry=None,
        )
        self.registry.register(_Families(self))

        # A labelled child per label values, found once (``labels()`` checks and locks).
        self._children: dict[tuple[Any, ...], Any] = {}
        # llmfast's event hook for the gateway's calls: only the events it counts are
        # made (not every call's ``attempt`` and ``attempt.ok``)
        self.on_event: EventHook = only_events(
            (*_LAYER_EVENTS, "ratelimit.wait"), self._count_event
        )

    def _child(self, metric: Counter | Histogram, *values: str) -> Any:
        key = (metric, *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def request_done(
        self, endpoint: str, model: str, tenant: str, status: int, seconds: float
    ) -> None:
        self.requests.add((endpoint, model, tenant, str(status)))
        self.latency.observe((endpoint, model, tenant), seconds)

    def error(self, model: str, tenant: str, code: str | None, status: int) -> None:
        label = code if code in _OWN_CODES else f"http_{status}"
        self._child(self.errors, model, tenant, label).inc()

    def first_chunk_after(self, model: str, tenant: str, seconds: float) -> None:
        self.first_chunk.observe((model, tenant), seconds)

    def usage(self, model: str, tenant: str, usage: Usage | Any) -> None:
        prompt = getattr(usage, "prompt_tokens", 0) or 0
        completion = getattr(usage, "completion_tokens", 0) or 0
        self.tokens.add((model, tenant, "input"), prompt)
        if completion:
            self.tokens.add((model, tenant, "output"), completion)

    def _count_event(self, event: Event) -> None:
        """Count what the layers did for a gateway call (``on_event`` passes only the
        events named in ``_LAYER_EVENTS`` and ``ratelimit.wait``)."""
        name = _LAYER_EVENTS.get(event.name)
        context = event.request.context
        if not context or "gateway" not in context:
            return
        model, tenant = context["gateway"]
        if event.name == "cache.hit":
            context["cache_hit"] = True  # its usage was paid for by an earlier call
        if name is not None:
            self._child(self.layer_events, model, tenant, name).inc()
        elif event.name == "ratelimit.wait" and event.elapsed is not None:
            self._child(self.limiter_wait, model, tenant).observe(event.elapsed)

    def render(self) -> bytes:
        """The figures in Prometheus' text format."""
        return generate_latest(self.registry)


class _Families:
    """Every family, in the order ``/metrics`` has always listed them."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._metrics
        yield m.requests.family()
        yield from m.errors.collect()
        yield m.latency.family()
        yield m.first_chunk.family()
        yield m.tokens.family()
        yield from m.layer_events.collect()
        yield from m.limiter_wait.collect()
