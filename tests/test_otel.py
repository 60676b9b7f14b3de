"""``llmfast.otel.OpenTelemetry``: GenAI spans and metrics from real calls over loopback,
checked with the SDK's in-memory span exporter and metric reader."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

if not os.environ.get("CI"):  # in CI the otel extra is installed: a missing one fails
    pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import llmfast
from llmfast import ChatRequest, Event, Request
from llmfast.layers import Cache, Retry
from llmfast.otel import OpenTelemetry
from llmfast.testing import MockServer, Reply

SECRET = "sk-otel-SECRET-do-not-leak"
PROMPT = "my confidential prompt"


@dataclass
class Telemetry:
    hook: OpenTelemetry
    tracer_provider: TracerProvider
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def call_spans(self) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.name != "llmfast.attempt" and s.name != "app"]

    def points(self, name: str) -> list[HistogramDataPoint]:
        data = self.metrics.get_metrics_data()
        assert data is not None
        found: list[HistogramDataPoint] = []
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found += metric.data.data_points  # type: ignore[arg-type]
        return found


@pytest.fixture
def telemetry(server: MockServer) -> Iterator[Telemetry]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    hook = OpenTelemetry(
        provider="openai",
        base_url=server.url,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )
    yield Telemetry(hook, tracer_provider, spans, reader)
    meter_provider.shutdown()
    tracer_provider.shutdown()


def client_for(server: MockServer, telemetry: Telemetry, **options: Any) -> llmfast.Client:
    """A client with the layers given: none by default, so a call is one span (the
    attempt spans a Retry adds are tested with an explicit one)."""
    options.setdefault("layers", [])
    return llmfast.Client(
        base_url=server.url, api_key=SECRET, model="mock-model", on_event=telemetry.hook, **options
    )


async def test_a_chat_call_is_one_client_span_with_the_genai_attributes(
    server: MockServer, telemetry: Telemetry
) -> None:
    began = time.time_ns()
    async with client_for(server, telemetry) as client:
        reply = await client.chat(PROMPT, temperature=0.5, max_tokens=50, seed=3)
    ended = time.time_ns()
    (span,) = telemetry.finished()
    assert span.name == "chat mock-model"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert reply.usage is not None
    attributes = dict(span.attributes or {})
    # finish reasons are there once the Client reports them in `done` (see the OTel docs)
    assert attributes.pop("gen_ai.response.finish_reasons", ("stop",)) == ("stop",)
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "mock-model",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "server.address": "127.0.0.1",
        "server.port": server.port,
        "gen_ai.request.temperature": 0.5,
        "gen_ai.request.max_tokens": 50,
        "gen_ai.request.seed": 3,
        "gen_ai.usage.input_tokens": reply.usage.prompt_tokens,
        "gen_ai.usage.output_tokens": reply.usage.completion_tokens,
    }
    assert span.start_time is not None
    assert span.end_time is not None
    assert began <= span.start_time < span.end_time <= ended


async def test_a_retried_stream_has_a_child_span_per_attempt(
    server: MockServer, telemetry: Telemetry
) -> None:
    server.enqueue(Reply.error(503, retry_after=0.05), Reply.text("a b c", token_delay=0.01))
    client = client_for(server, telemetry, layers=[Retry(max_attempts=3)])
    async with client, client.stream(PROMPT) as stream:
        await stream.collect()
    (call,) = telemetry.call_spans()
    first, second = sorted(
        (s for s in telemetry.finished() if s.name == "llmfast.attempt"),
        key=lambda s: s.start_time or 0,
    )
    assert call.attributes is not None
    assert call.attributes["llmfast.stream"] is True
    assert call.attributes["llmfast.chunks"] == len(stream.chunks)
    for attempt in (first, second):
        assert attempt.parent is not None
        assert attempt.parent.span_id == call.context.span_id
        assert attempt.context.trace_id == call.context.trace_id
    assert first.attributes is not None
    assert second.attributes is not None
    assert first.attributes["error.type"] == "ServerError"
    assert first.status.status_code is StatusCode.ERROR
    assert second.attributes["http.request.resend_count"] == 1
    assert "error.type" not in second.attributes
    assert call.start_time is not None
    assert call.end_time is not None
    assert first.start_time is not None
    assert first.end_time is not None
    assert second.start_time is not None
    assert second.end_time is not None
    # the retry wait lies between the attempts; the streaming attempt lasts to the end
    assert call.start_time <= first.start_time < first.end_time
    assert second.start_time - first.end_time >= 0.05e9 * 0.9
    assert second.end_time == call.end_time
    retry = next(e for e in call.events if e.name == "llmfast.retry")
    assert retry.attributes is not None
    assert retry.attributes["llmfast.elapsed"] == pytest.approx(0.05)
    assert retry.attributes["llmfast.reason"] == "server"
    assert any(e.name == "llmfast.first_chunk" for e in call.events)
    (first_chunk,) = telemetry.points("gen_ai.client.operation.time_to_first_chunk")
    assert first_chunk.count == 1
    assert 0.05 <= first_chunk.sum <= (call.end_time - call.start_time) / 1e9


async def test_a_failed_call_has_an_error_status_and_error_type(
    server: MockServer, telemetry: Telemetry
) -> None:
    server.enqueue(Reply.error(400))
    async with client_for(server, telemetry) as client:
        with pytest.raises(llmfast.BadRequestError):
            await client.chat(PROMPT)
    (span,) = telemetry.finished()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "BadRequestError"
    (point,) = telemetry.points("gen_ai.client.operation.duration")
    assert point.attributes is not None
    assert point.attributes["error.type"] == "BadRequestError"
    assert telemetry.points("gen_ai.client.token.usage") == []


async def test_metrics_duration_and_token_usage(server: MockServer, telemetry: Telemetry) -> None:
    async with client_for(server, telemetry, layers=[Cache()]) as client:
        reply = await client.chat("one two three", temperature=0)
        await client.chat("one two three", temperature=0)  # a cache hit: no tokens used
        embedded = await client.embed(["x", "y"])
    spans = telemetry.call_spans()
    assert [s.name for s in spans] == ["chat mock-model"] * 2 + ["embeddings mock-model"]
    durations = {
        p.attributes["gen_ai.operation.name"]: p  # type: ignore[index]
        for p in telemetry.points("gen_ai.client.operation.duration")
    }
    assert durations["chat"].count == 2
    assert durations["embeddings"].count == 1
    assert durations["chat"].attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "mock-model",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "server.address": "127.0.0.1",
        "server.port": server.port,
    }
    assert list(durations["chat"].explicit_bounds)[:3] == [0.01, 0.02, 0.04]
    expected = sum((s.end_time or 0) - (s.start_time or 0) for s in spans[:2]) / 1e9
    assert durations["chat"].sum == pytest.approx(expected, rel=0.01)
    tokens = {
        (p.attributes["gen_ai.operation.name"], p.attributes["gen_ai.token.type"]): p  # type: ignore[index]
        for p in telemetry.points("gen_ai.client.token.usage")
    }
    assert reply.usage is not None
    assert embedded.usage is not None
    assert tokens["chat", "input"].sum == reply.usage.prompt_tokens  # the hit is not counted
    assert tokens["chat", "input"].count == 1
    assert tokens["chat", "output"].sum == reply.usage.completion_tokens
    assert tokens["embeddings", "input"].sum == embedded.usage.prompt_tokens
    hit = spans[1]
    assert any(e.name == "llmfast.cache.hit" for e in hit.events)


async def test_the_call_span_is_a_child_of_the_current_span(
    server: MockServer, telemetry: Telemetry
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    async with client_for(server, telemetry) as client:
        with tracer.start_as_current_span("app") as app:
            await client.chat(PROMPT)
    (call,) = telemetry.call_spans()
    assert call.parent is not None
    assert call.parent.span_id == app.get_span_context().span_id


async def test_a_stream_closed_early_is_not_an_error(
    server: MockServer, telemetry: Telemetry
) -> None:
    async with client_for(server, telemetry) as client, client.stream(PROMPT):
        pass  # opened, never read
    (span,) = telemetry.finished()
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes is not None
    assert span.attributes["llmfast.outcome"] == "closed"
    assert "error.type" not in span.attributes


async def test_no_key_and_no_message_contents_in_spans_or_metrics(
    server: MockServer, telemetry: Telemetry
) -> None:
    server.enqueue(Reply.error(401), Reply.error(503), Reply.reset(), Reply.text(PROMPT))
    async with client_for(server, telemetry, layers=[Cache(), Retry(max_attempts=2)]) as client:
        with pytest.raises(llmfast.AuthenticationError):
            await client.chat(PROMPT, seed=1)
        with pytest.raises(llmfast.ReadError):
            await client.chat(PROMPT, seed=1)  # 503, then a reset: fails twice
        await client.chat(PROMPT, seed=1)
    client = client_for(server, telemetry, layers=[Cache()])
    async with client, client.stream(PROMPT, seed=1) as stream:
        await stream.collect()
    spans = telemetry.finished()
    assert len(spans) >= 5
    text = "\n".join(span.to_json() for span in spans)
    data = telemetry.metrics.get_metrics_data()
    assert data is not None
    text += data.to_json()
    assert "chat mock-model" in text
    assert "AuthenticationError" in text
    assert SECRET not in text
    assert PROMPT not in text
    assert "confidential" not in text


def test_finish_reasons_when_the_call_reports_them(
    server: MockServer, telemetry: Telemetry
) -> None:
    request = Request(ChatRequest(model="m", messages=[]))
    data = {"kind": "chat", "model": "m", "outcome": "ok", "finish_reasons": ("stop", "length")}
    telemetry.hook(Event("done", request, 0.25, data))
    (span,) = telemetry.finished()
    assert span.attributes is not None
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop", "length")
    assert span.start_time is not None
    assert span.end_time is not None
    assert span.end_time - span.start_time == 250_000_000


def test_gemini_is_reported_by_its_semantic_conventions_name() -> None:
    tracer_provider = TracerProvider()
    hook = OpenTelemetry(
        provider="gemini",
        base_url="https://generativelanguage.googleapis.com/v1beta",
        tracer_provider=tracer_provider,
        meter_provider=MeterProvider(),
    )
    assert hook._common == {
        "gen_ai.provider.name": "gcp.gemini",
        "gen_ai.system": "gcp.gemini",
        "server.address": "generativelanguage.googleapis.com",
        "server.port": 443,
    }


def test_importing_llmfast_and_the_module_does_not_import_opentelemetry() -> None:
    code = (
        "import sys, llmfast, llmfast.otel, llmfast.stats, llmfast.log, llmfast.hooks\n"
        "assert not any(m.startswith('opentelemetry') for m in sys.modules), 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_spans_carry_the_prompt_cache_figures(
    server: MockServer, telemetry: Telemetry
) -> None:
    server.enqueue(Reply.text("cached answer").with_cache(read=3))
    async with client_for(server, telemetry) as client:
        reply = await client.chat("one two three four five")
    (span,) = telemetry.finished()
    attributes = dict(span.attributes or {})
    assert reply.usage is not None
    assert reply.usage.cache_read_tokens == 3
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 3
    assert attributes["gen_ai.usage.input_tokens"] == reply.usage.input_tokens
    assert "gen_ai.usage.cache_creation.input_tokens" not in attributes  # none written
