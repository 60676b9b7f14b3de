"""A provider-batch job reports each item as the online path reports a call (a ``done``
event to the client's hook): ``Stats`` bills its usage at the batch price from
genai-prices' real data and says what that saved against the online price; unknown
prices stay ``None``, never 0; OpenTelemetry gets a span per item."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from llmfast import Client, EmbeddingRequest
from llmfast.batch.provider import BatchLimits, ProviderBatchOptions
from llmfast.batch.summary import checkpoint_stats, cost_line
from llmfast.checkpoint import Record
from llmfast.cli import main
from llmfast.prices import Price, Prices
from llmfast.stats import Stats
from llmfast.testing import MockServer, Reply
from llmfast.types import Usage

# Models genai-prices prices with a batch rate (half the online price at both).
PRICED = [("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5")]


def options(max_requests: int = 4) -> ProviderBatchOptions:
    return ProviderBatchOptions(limits=BatchLimits(max_requests, 1 << 20), poll_interval=0.001)


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with MockServer() as server:
        yield server


async def loaded(stats: Stats) -> Stats:
    await asyncio.to_thread(stats.load_prices)  # the table's import, off the loop
    return stats


def prompts(n: int) -> list[str]:
    return [f"prompt number {i} " * (i + 1) for i in range(n)]


@pytest.mark.parametrize(("provider", "model"), PRICED)
async def test_stats_bill_the_batch_price_and_show_what_it_saved(
    server: MockServer, provider: str, model: str
) -> None:
    stats = await loaded(Stats())
    server.enqueue(Reply.text("ok"), Reply.error(400, message="bad item"))
    url = server.url_for(provider)
    async with Client(provider=provider, base_url=url, api_key="sk-x", stats=stats) as client:
        results = await client.map(prompts(6), via="batch", model=model, batch_options=options())
    prices = Prices()
    usages = [r.completion.usage for r in results if r.completion and r.completion.usage]
    assert len(usages) == 5
    assert all(u.batch and u.total_tokens for u in usages)
    batch_cost = sum(prices.cost(u, model) or 0.0 for u in usages)
    online_cost = sum(prices.cost(u, model, batch=False) or 0.0 for u in usages)
    assert batch_cost > 0
    snap = stats.snapshot()
    assert snap.calls == 6
    assert snap.errors == 1
    assert snap.outcomes["chat"] == {"ok": 5, "BadRequestError": 1}
    assert snap.input_tokens == sum(u.prompt_tokens for u in usages)
    assert snap.latency.count == 0  # a batch item has no latency of its own
    assert snap.batch_calls == 6
    assert snap.cost == pytest.approx(batch_cost)
    assert snap.batch_cost == pytest.approx(batch_cost)
    assert snap.batch_saved == pytest.approx(online_cost - batch_cost)
    assert snap.batch_saved == pytest.approx(online_cost / 2)  # the providers' half price
    assert snap.models[model].batch_saved == snap.batch_saved
    assert snap.to_dict()["batch_saved"] == snap.batch_saved
    assert "batch        6 calls at the batch price" in str(snap)
    assert f"saved {snap.batch_saved:.6g} against the online price" in str(snap)


@pytest.mark.parametrize(
    ("model", "why"),
    [("m", "priced nowhere"), ("claude-3-5-haiku-latest", "an online price, no batch one")],
)
async def test_unknown_prices_are_none_never_zero(server: MockServer, model: str, why: str) -> None:
    stats = await loaded(Stats())
    async with Client(base_url=server.url, api_key="sk-x", model=model, stats=stats) as client:
        await client.map(prompts(3), via="batch", batch_options=options())
    snap = stats.snapshot()
    assert snap.batch_calls == 3, why
    assert snap.input_tokens > 0
    assert snap.cost is None
    assert snap.batch_cost is None
    assert snap.batch_saved is None
    assert snap.unpriced_models == (model,)
    assert "cost unknown, saved unknown against the online price" in str(snap)


async def test_the_online_fallback_is_billed_online(server: MockServer) -> None:
    server.batches.processing_time = 3600
    stats = await loaded(Stats())
    items: list[str | EmbeddingRequest] = [*prompts(3), EmbeddingRequest(model="gpt-4o", input="t")]
    async with Client(base_url=server.url, api_key="sk-x", model="gpt-4o", stats=stats) as client:
        results = await client.map(items, via="batch", fallback_after=0.0, batch_options=options())
    usages = [r.completion.usage for r in results if r.completion and r.completion.usage]
    embedded = results[3].embeddings
    assert embedded is not None
    assert embedded.usage is not None
    assert not embedded.usage.batch
    usages.append(Usage(embedded.usage.prompt_tokens))
    snap = stats.snapshot()
    assert snap.outcomes == {"chat": {"ok": 3}, "embed": {"ok": 1}}
    assert snap.batch_calls == 0
    assert snap.batch_saved == 0.0
    assert snap.latency.count == 4  # online calls, timed
    assert snap.models["gpt-4o"].input_tokens == sum(u.prompt_tokens for u in usages)
    assert snap.cost == pytest.approx(sum(Prices().cost(u, "gpt-4o") or 0.0 for u in usages))
    assert "batch " not in str(snap)


async def test_embeddings_at_the_batch_rate_and_resumed_items_not_billed_again(
    server: MockServer, tmp_path: Path
) -> None:
    price = Price(0.02, 0.0, batch=Price(0.01, 0.0))
    stats = await loaded(Stats(prices={"e": price}))
    items = [EmbeddingRequest(model="e", input=["some text"] * (i + 1)) for i in range(3)]
    checkpoint = tmp_path / "run.jsonl"
    async with Client(base_url=server.url, api_key="sk-x", model="m", stats=stats) as client:
        results = await client.map(items, via="batch", checkpoint=checkpoint)
        tokens = sum(
            r.embeddings.usage.prompt_tokens for r in results if r.embeddings and r.embeddings.usage
        )
        first = stats.snapshot()
        stats.reset()
        again = await client.map(items, via="batch", checkpoint=checkpoint)
    assert tokens > 0
    assert first.outcomes["embed"] == {"ok": 3}
    assert first.batch_calls == 3
    assert first.cost == pytest.approx(tokens * 0.01 / 1e6)
    assert first.batch_saved == pytest.approx(tokens * 0.01 / 1e6)
    assert all(r.resumed for r in again)
    assert stats.snapshot().calls == 0  # billed by the run that collected them
    # --status prices the checkpoint: the embeddings were marked as batch results there.
    recorded = checkpoint_stats(checkpoint, Stats(prices={"e": price}, builtin_prices=False))
    assert recorded.batch_calls == 3
    assert recorded.batch_saved == pytest.approx(first.batch_saved)
    unpriced = cost_line(checkpoint_stats(checkpoint, Stats(builtin_prices=False)))
    assert unpriced == (
        "cost unknown at the batch price, saved unknown against the online price "
        "(no price for e; pip install 'llmfast[prices]' for the built-in table)"
    )


async def test_opentelemetry_gets_a_span_per_item(server: MockServer) -> None:
    if not os.environ.get("CI"):
        pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from llmfast.otel import OpenTelemetry

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    hook = OpenTelemetry(provider="openai", base_url=server.url, tracer_provider=provider)
    async with Client(base_url=server.url, api_key="sk-x", model="m", on_event=hook) as client:
        await client.map(prompts(3), via="batch", batch_options=options())
    finished = spans.get_finished_spans()
    assert [s.name for s in finished] == ["chat m"] * 3
    assert all(s.attributes and s.attributes["llmfast.batch"] is True for s in finished)
    assert all(s.attributes and s.attributes["gen_ai.usage.input_tokens"] for s in finished)


def test_the_cli_shows_the_cost_and_saving_at_the_end_and_in_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(f'"prompt {i}"\n' for i in range(5)))
    with MockServer.in_thread() as server:
        flags = ["--base-url", server.url, "--model", "gpt-4o-mini"]
        args = ["batch", str(source), "-o", str(output), "--provider-batch", *flags]
        assert main([*args, "--poll-interval", "0.001"]) == 0
        end = capsys.readouterr().err
        assert main(["batch", "--status", str(output), *flags]) == 0
        status = capsys.readouterr().out
    records = [msgspec.json.decode(line, type=Record) for line in output.read_bytes().splitlines()]
    usages = [r.completion.usage for r in records if r.completion and r.completion.usage]
    assert len(usages) == 5
    assert all(u.batch for u in usages)
    prices = Prices()
    cost = sum(prices.cost(u, "gpt-4o-mini") or 0.0 for u in usages)
    saved = sum(prices.cost(u, "gpt-4o-mini", batch=False) or 0.0 for u in usages) - cost
    line = f"cost ${cost:.6g} at the batch price, saved ${saved:.6g} against the online price"
    assert f"llmfast: this run's {line}" in end
    assert f"5 results recorded: {line}" in status
    assert saved > 0
