"""``GET /metrics``: the gateway's figures in Prometheus' text format, per model and
tenant (with ``prometheus-client``, from the ``gateway`` extra).

Requests (by endpoint and status), errors (by code), latency and time-to-first-chunk
histograms, tokens in and out, and what the layers did — cache hits and misses,
calls coalesced into one, retries, failovers, time waited in limiters — read from
llmfast's event hook (``llmfast.events``). Labels never hold keys: a tenant is its
name in the configuration.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from llmfast.events import Event
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
        self.requests = Counter(
            "llmfast_gateway_requests",
            "Requests answered, by endpoint and HTTP status.",
            ("endpoint", *labels, "status"),
            registry=self.registry,
        )
        self.errors = Counter(
            "llmfast_gateway_errors",
            "Calls that failed, before or during their answer, by error code (the "
            "gateway's own, or http_<status> for an upstream's).",
            (*labels, "code"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "llmfast_gateway_request_seconds",
            "Time from a request's arrival to the end of its answer.",
            ("endpoint", *labels),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.first_chunk = Histogram(
            "llmfast_gateway_first_chunk_seconds",
            "Time from a streamed request's arrival to its first chunk.",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "llmfast_gateway_tokens",
            "Tokens the upstreams reported (cache hits left out), by direction (input, output).",
            (*labels, "direction"),
            registry=self.registry,
        )
        self.layer_events = Counter(
            "llmfast_gateway_layer_events",
            "What the layers did: cache_hit, cache_miss, coalesced, kept_for_followers, "
            "retry, failover.",
            (*labels, "event"),
            registry=self.registry,
        )
        self.limiter_wait = Histogram(
            "llmfast_gateway_limiter_wait_seconds",
            "Time calls waited in a rate limiter before being let through.",
            labels,
            buckets=(0.001, 0.01, 0.1, 0.5, 1, 5, 30),
            registry=self.registry,
        )

        # A labelled child per label values, found once (``labels()`` checks and locks).
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Counter | Histogram, *values: str) -> Any:
        key = (metric, *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def request_done(
        self, endpoint: str, model: str, tenant: str, status: int, seconds: float
    ) -> None:
        self._child(self.requests, endpoint, model, tenant, str(status)).inc()
        self._child(self.latency, endpoint, model, tenant).observe(seconds)

    def error(self, model: str, tenant: str, code: str | None, status: int) -> None:
        label = code if code in _OWN_CODES else f"http_{status}"
        self._child(self.errors, model, tenant, label).inc()

    def first_chunk_after(self, model: str, tenant: str, seconds: float) -> None:
        self._child(self.first_chunk, model, tenant).observe(seconds)

    def usage(self, model: str, tenant: str, usage: Usage | Any) -> None:
        prompt = getattr(usage, "prompt_tokens", 0) or 0
        completion = getattr(usage, "completion_tokens", 0) or 0
        self._child(self.tokens, model, tenant, "input").inc(prompt)
        if completion:
            self._child(self.tokens, model, tenant, "output").inc(completion)

    def on_event(self, event: Event) -> None:
        """llmfast's event hook: counts what the layers did for a gateway call."""
        context = event.request.context
        if not context or "gateway" not in context:
            return
        model, tenant = context["gateway"]
        if event.name == "cache.hit":
            context["cache_hit"] = True  # its usage was paid for by an earlier call
        name = _LAYER_EVENTS.get(event.name)
        if name is not None:
            self._child(self.layer_events, model, tenant, name).inc()
        elif event.name == "ratelimit.wait" and event.elapsed is not None:
            self._child(self.limiter_wait, model, tenant).observe(event.elapsed)

    def render(self) -> bytes:
        """The figures in Prometheus' text format."""
        return generate_latest(self.registry)
