"""A resumed Responses stream is observable: a ``resume`` event per re-attachment (the
response id, the sequence number, the drop's class), counted in ``Stats`` as
``retry.resumes``, a span event and a ``llmfast.resumes`` attribute in OpenTelemetry,
and a log line from ``LoggingHook``; never the API key."""

from __future__ import annotations

import logging

import pytest

from llmfast import Client, Event
from llmfast.backends.openai_responses import OpenAIResponsesBackend
from llmfast.hooks import fan_out
from llmfast.log import LoggingHook
from llmfast.stats import Stats
from llmfast.testing import MockServer, Reply

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from llmfast.otel import OpenTelemetry

KEY = "sk-resume-secret-4242"
PROMPT = "one two three four five six seven eight"
BACKGROUND = {"background": True}


async def test_each_resume_is_reported_counted_traced_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    events: list[Event] = []
    stats = Stats(builtin_prices=False)
    otel = OpenTelemetry(provider="openai-responses", tracer_provider=tracer_provider)
    hook = fan_out(events.append, stats, otel, LoggingHook())
    caplog.set_level(logging.DEBUG, logger="llmfast")
    async with MockServer() as server:
        backend = OpenAIResponsesBackend(server.url, api_key=KEY, model="m")
        async with Client(backend, on_event=hook) as client:
            server.enqueue(Reply.reset(after_chunks=5), Reply.reset(after_chunks=3))
            async with client.stream(PROMPT, extra_body=BACKGROUND) as stream:
                text = "".join([chunk.text async for chunk in stream])
            response_id = stream.completion.id
    assert text == PROMPT
    resumes = [e for e in events if e.name == "resume"]
    assert [e.data["resume"] for e in resumes] == [1, 2]
    assert {e.data["response_id"] for e in resumes} == {response_id}
    first, second = (e.data["sequence_number"] for e in resumes)
    assert 0 <= first < second  # the second drop came later in the same response
    assert {e.data["reason"] for e in resumes} == {"ReadError"}
    snapshot = stats.snapshot()
    assert snapshot.retry.resumes == 2
    assert snapshot.retry.retries == 0  # a resume is not a new attempt
    [span] = [s for s in exporter.get_finished_spans() if s.name.startswith("chat")]
    assert span.attributes is not None
    assert span.attributes["llmfast.resumes"] == 2
    traced = [
        event
        for s in exporter.get_finished_spans()
        for event in s.events
        if event.name == "llmfast.resume"
    ]
    assert len(traced) == 2
    assert traced[0].attributes is not None
    assert traced[0].attributes["llmfast.response_id"] == response_id
    lines = [r.getMessage() for r in caplog.records if r.name == "llmfast.retry"]
    logged = [line for line in lines if line.startswith("resuming response")]
    assert logged == [
        f"resuming response {response_id} after sequence number {first} (resume 1, after"
        " ReadError)",
        f"resuming response {response_id} after sequence number {second} (resume 2, after"
        " ReadError)",
    ]
    everything = repr([e.data for e in events]) + caplog.text + repr(span.attributes)
    assert KEY not in everything


async def test_a_stream_that_never_drops_reports_no_resume() -> None:
    events: list[Event] = []
    stats = Stats(builtin_prices=False)
    async with MockServer() as server:
        backend = OpenAIResponsesBackend(server.url, api_key=KEY, model="m")
        client = Client(backend, on_event=fan_out(events.append, stats))
        async with client, client.stream(PROMPT, extra_body=BACKGROUND) as stream:
            assert "".join([chunk.text async for chunk in stream]) == PROMPT
    assert not [e for e in events if e.name == "resume"]
    assert stats.snapshot().retry.resumes == 0
