"""OpenTelemetry for llmfast (``pip install 'llmfast[otel]'``): an event hook that
records a span per call, a child span per attempt, and the GenAI client metrics,
following the OpenTelemetry GenAI semantic conventions::

    client = llmfast.Client(
        model="gpt-4o-mini",
        on_event=OpenTelemetry(provider="openai", base_url="https://api.openai.com/v1"),
    )

Spans are built when the call ends, from its events, with their real start and end
times (the call's span starts ``done.elapsed`` before it ended), under the span that
was current when the call ended. Attributes hold the model, the parameters, token
counts, finish reasons and the error's class: never the API key or message contents.
``opentelemetry`` is imported only when the hook is built.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from llmfast.errors import ConfigurationError
from llmfast.events import Event
from llmfast.redact import redact_text
from llmfast.transport import Request
from llmfast.types import ChatRequest

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider

__all__ = ["OpenTelemetry"]

_PENDING_LIMIT = 10_000  # calls with events but no `done` yet
# llmfast backend kind -> gen_ai.provider.name
_PROVIDERS = {"gemini": "gcp.gemini", "openai-responses": "openai"}
_CACHE_ATTRIBUTES = (
    ("cache_read_tokens", "gen_ai.usage.cache_read.input_tokens"),
    ("cache_write_tokens", "gen_ai.usage.cache_creation.input_tokens"),
    ("reasoning_tokens", "llmfast.usage.reasoning_tokens"),
)
_OPERATIONS = {"chat": "chat", "embed": "embeddings"}
_PARAMETERS = {  # ChatRequest field -> gen_ai.request.* attribute
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "seed": "gen_ai.request.seed",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "n": "gen_ai.request.choice.count",
}
# Bucket boundaries the GenAI semantic conventions advise.
_DURATION_BUCKETS = [0.01 * 2**i for i in range(14)]  # 0.01 s ... 81.92 s
_TOKEN_BUCKETS = [4**i for i in range(14)]  # 1 ... 67,108,864
_FIRST_CHUNK_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75]
_FIRST_CHUNK_BUCKETS += [1.0, 2.5, 5.0, 7.5, 10.0]
_SKIPPED_DATA = frozenset({"key"})  # a cache key is a hash: it says nothing


@dataclass(slots=True)
class _Attempt:
    number: int
    start: int
    end: int | None = None
    error: str | None = None
    ok: bool = False


@dataclass(slots=True)
class _Call:
    attempts: list[_Attempt] = field(default_factory=list)
    events: list[tuple[str, int, dict[str, Any], _Attempt | None]] = field(default_factory=list)
    served: bool = False  # by the cache or by an identical call in flight: no tokens used


class OpenTelemetry:
    """An event hook producing OpenTelemetry spans and metrics for every call.

    Args:
        provider: the backend's provider (``"openai"``, ``"anthropic"``, ``"gemini"``,
            ``"ollama"``...), reported as ``gen_ai.provider.name`` (and the older
            ``gen_ai.system``); e.g. ``client.backend.kind``.
        base_url: the API root, reported as ``server.address`` and ``server.port``.
        tracer_provider: default: the global one.
        meter_provider: default: the global one.
    """

    def __init__(
        self,
        *,
        provider: str | None = None,
        base_url: str | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        try:
            from opentelemetry import metrics, trace
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConfigurationError(
                "OpenTelemetry needs the otel extra: pip install 'llmfast[otel]'"
            ) from exc
        from llmfast import __version__

        self._trace = trace
        self._tracer = trace.get_tracer("llmfast", __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter("llmfast", __version__, meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self._first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to receive the first chunk of a streamed response.",
            explicit_bucket_boundaries_advisory=_FIRST_CHUNK_BUCKETS,
        )
        common: dict[str, Any] = {}
        if provider is not None:
            name = _PROVIDERS.get(provider, provider)
            common["gen_ai.provider.name"] = common["gen_ai.system"] = name
        if base_url is not None:
            parts = urlsplit(base_url)
            if parts.hostname:
                common["server.address"] = parts.hostname
                port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
                if port is not None:
                    common["server.port"] = port
        self._common = common
        self._epoch = time.time_ns() - time.monotonic_ns()
        self._calls: dict[Request, _Call] = {}
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        now = time.monotonic_ns() + self._epoch  # the clock of `elapsed`, as wall time
        name = event.name
        request = event.request
        if name == "done":
            with self._lock:
                call = self._calls.pop(request, None)
            self._finish(event, call, now)
            return
        if name == "first_chunk" and event.elapsed is not None:
            self._first_chunk.record(event.elapsed, self._metric_attributes(request))
        with self._lock:
            call = self._calls.get(request)
            if call is None:
                if len(self._calls) >= _PENDING_LIMIT:  # calls whose `done` never came
                    del self._calls[next(iter(self._calls))]
                call = self._calls[request] = _Call()
        attempts = call.attempts
        if name == "attempt":
            attempts.append(_Attempt(int(event.data.get("attempt", len(attempts) + 1)), now))
            return
        last = attempts[-1] if attempts else None
        current = last if last is not None and last.end is None and not last.ok else None
        if name == "attempt.failed" and current is not None:
            current.end = now
            current.error = redact_text(str(event.data.get("error", "?")))
        elif name == "attempt.ok" and current is not None:
            current.ok = True
            if not request.stream:
                current.end = now
            current = None  # what follows belongs to the call
        elif name in ("cache.hit", "coalesce.join"):
            call.served = True
        attributes = {
            f"llmfast.{k}": _plain(v)
            for k, v in event.data.items()
            if v is not None and k not in _SKIPPED_DATA
        }
        if event.elapsed is not None:
            attributes["llmfast.elapsed"] = event.elapsed
        call.events.append((f"llmfast.{name}", now, attributes, current))

    # -- building the spans -------------------------------------------------------------

    def _metric_attributes(self, request: Request) -> dict[str, Any]:
        return {
            **self._common,
            "gen_ai.operation.name": _OPERATIONS[request.kind],
            "gen_ai.request.model": request.body.model,
        }

    def _finish(self, event: Event, call: _Call | None, end: int) -> None:
        trace = self._trace
        request = event.request
        data = event.data
        elapsed = event.elapsed or 0.0
        start = end - int(elapsed * 1e9)
        if call is not None:  # `elapsed` was taken a moment before `end`
            start = min(
                [start, *(e[1] for e in call.events[:1]), *(a.start for a in call.attempts)]
            )
        outcome = data.get("outcome", "ok")
        error = None if outcome in ("ok", "closed") else str(outcome)
        metric_attributes = self._metric_attributes(request)
        if error is not None:
            metric_attributes["error.type"] = error
        if event.elapsed is not None:  # (a provider-batch item has no latency of its own)
            self._duration.record(elapsed, metric_attributes)
        attributes = {**metric_attributes, **_request_attributes(request.body)}
        if data.get("batch"):
            attributes["llmfast.batch"] = True
        usage = (
            ("input", "gen_ai.usage.input_tokens", data.get("prompt_tokens")),
            ("output", "gen_ai.usage.output_tokens", data.get("completion_tokens")),
        )
        for token_type, attribute, tokens in usage:
            if tokens is not None:
                attributes[attribute] = tokens
                if call is None or not call.served:
                    self._tokens.record(
                        tokens, {**metric_attributes, "gen_ai.token.type": token_type}
                    )
        for key, attribute in _CACHE_ATTRIBUTES:  # parts of input_tokens (all attempts')
            if data.get(key):
                attributes[attribute] = data[key]
        finish_reasons = data.get("finish_reasons")
        if finish_reasons:
            attributes["gen_ai.response.finish_reasons"] = [str(r) for r in finish_reasons]
        if request.stream:
            attributes["llmfast.stream"] = True
            for key in ("chunks", "max_gap"):
                if data.get(key) is not None:
                    attributes[f"llmfast.{key}"] = data[key]
        if outcome == "closed":
            attributes["llmfast.outcome"] = "closed"
        resumes = 0 if call is None else sum(e[0] == "llmfast.resume" for e in call.events)
        if resumes:
            attributes["llmfast.resumes"] = resumes  # each also a `llmfast.resume` span event
        span = self._tracer.start_span(
            f"{metric_attributes['gen_ai.operation.name']} {request.body.model}",
            kind=trace.SpanKind.CLIENT,
            attributes=attributes,
            start_time=start,
        )
        if call is not None:
            self._add_attempts(span, call, metric_attributes, end)
        if error is not None:
            span.set_status(trace.Status(trace.StatusCode.ERROR))
        span.end(end_time=end)

    def _add_attempts(self, parent: Span, call: _Call, common: Mapping[str, Any], end: int) -> None:
        trace = self._trace
        context = trace.set_span_in_context(parent)
        spans: dict[int, Span] = {}
        for attempt in call.attempts:
            attributes = {
                "gen_ai.operation.name": common["gen_ai.operation.name"],
                "gen_ai.request.model": common["gen_ai.request.model"],
                "llmfast.attempt": attempt.number,
            }
            if attempt.number > 1:
                attributes["http.request.resend_count"] = attempt.number - 1
            if attempt.error is not None:
                attributes["error.type"] = attempt.error
            span = self._tracer.start_span(
                "llmfast.attempt", context, attributes=attributes, start_time=attempt.start
            )
            if attempt.error is not None:
                span.set_status(trace.Status(trace.StatusCode.ERROR))
            spans[id(attempt)] = span
        for name, timestamp, attributes, during in call.events:
            target = parent if during is None else spans[id(during)]
            target.add_event(name, attributes, timestamp)
        for attempt in call.attempts:
            spans[id(attempt)].end(end_time=end if attempt.end is None else attempt.end)

    def __repr__(self) -> str:
        return f"<OpenTelemetry {self._common.get('gen_ai.provider.name', '')}>"


def _request_attributes(body: Any) -> dict[str, Any]:
    """The request's parameters as ``gen_ai.request.*`` (never the messages)."""
    if type(body) is not ChatRequest:
        encoding = getattr(body, "encoding_format", None)
        return {} if encoding is None else {"gen_ai.request.encoding_formats": [encoding]}
    attributes: dict[str, Any] = {}
    for name, attribute in _PARAMETERS.items():
        value = getattr(body, name, None)
        if value is not None:
            attributes[attribute] = value
    return attributes


def _plain(value: Any) -> Any:
    """An attribute value OpenTelemetry accepts."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, BaseException):
        return type(value).__name__  # its message may quote a server's or a store's words
    return str(value)
