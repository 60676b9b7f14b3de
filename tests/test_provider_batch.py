"""``client.map(..., via="batch")`` against the mock server's batch APIs (OpenAI files +
batches, Anthropic message batches): the same results as the online runner, split at
the limits, per-item errors, expiry, validation failures, 429s on polling, dropped
downloads, fallback to the online API, re-attaching, status and cancel."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import msgspec
import pytest

from llmfast import Client, EmbeddingRequest
from llmfast.batch.provider import BATCH_TIER, BatchLimits, ProviderBatchOptions
from llmfast.batch.provider.batch import journal_path
from llmfast.batch.provider.control import cancel, describe, status
from llmfast.batch.provider.journal import Entry, Journal
from llmfast.cli import main
from llmfast.errors import (
    BadRequestError,
    ConfigurationError,
    RateLimitError,
    UnsupportedParameterError,
)
from llmfast.testing import MockServer, Reply

PROVIDERS = ["openai", "anthropic"]


def options(max_requests: int = 4) -> ProviderBatchOptions:
    return ProviderBatchOptions(limits=BatchLimits(max_requests, 1 << 20), poll_interval=0.001)


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with MockServer() as server:
        yield server


def client_for(server: MockServer, provider: str) -> Client:
    return Client(
        provider=provider, base_url=server.url_for(provider), api_key="sk-test", model="m"
    )


def prompts(n: int) -> list[str]:
    return [f"prompt {i}" for i in range(n)]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("ordered", [True, False])
async def test_same_results_as_online_split_at_the_limit(
    server: MockServer, provider: str, ordered: bool, tmp_path: Path
) -> None:
    async with client_for(server, provider) as client:
        online = await client.map(prompts(10))
        results = await client.map(
            prompts(10),
            via="batch",
            ordered=ordered,
            checkpoint=tmp_path / "run.jsonl",
            batch_options=options(4),
        )
    if ordered:
        assert [r.index for r in results] == list(range(10))
    by_index = {r.index: r for r in results}
    assert sorted(by_index) == list(range(10))
    assert [by_index[i].text for i in range(10)] == [r.text for r in online]
    assert [by_index[i].request_hash for i in range(10)] == [r.request_hash for r in online]
    assert all(r.completion.service_tier == BATCH_TIER for r in results if r.completion)
    assert all(r.completion.usage.batch for r in results if r.completion and r.completion.usage)
    assert server.batches.created == 3  # 4 + 4 + 2
    assert server.batches.items_submitted() == dict.fromkeys(range(10), 1)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_item_errors_are_results(server: MockServer, provider: str) -> None:
    server.enqueue(Reply.text("fine"), Reply.error(400, message="bad item"), Reply.error(429))
    async with client_for(server, provider) as client:
        results = await client.map(prompts(5), via="batch", batch_options=options(10))
    assert [r.ok for r in results] == [True, False, False, True, True]
    assert results[0].text == "fine"
    assert isinstance(results[1].error, BadRequestError)
    assert "bad item" in str(results[1].error)
    assert isinstance(results[2].error, RateLimitError)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_batch_that_fails_validation_fails_its_items(
    server: MockServer, provider: str
) -> None:
    server.batches.fail_validation(1)
    async with client_for(server, provider) as client:
        results = await client.map(prompts(6), via="batch", batch_options=options(3))
    assert [r.ok for r in results] == [False] * 3 + [True] * 3
    assert all(isinstance(r.error, BadRequestError) for r in results[:3])


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_expired_items_are_submitted_again(server: MockServer, provider: str) -> None:
    server.batches.expire(1, keep=2)
    async with client_for(server, provider) as client:
        results = await client.map(prompts(5), via="batch", batch_options=options(10))
    assert [r.text for r in results] == prompts(5)
    assert server.batches.items_submitted() == {0: 1, 1: 1, 2: 2, 3: 2, 4: 2}
    assert server.batches.created == 2


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_polls_rate_limited_and_downloads_dropped(server: MockServer, provider: str) -> None:
    server.batches.rate_limit_polls(3)
    server.batches.drop_downloads(1)
    async with client_for(server, provider) as client:
        results = await client.map(prompts(30), via="batch", batch_options=options(40))
    assert [r.text for r in results] == prompts(30)
    assert server.batches.polls >= 4
    assert server.batches.items_submitted() == dict.fromkeys(range(30), 1)


async def test_time_runs_on_the_api_clock(server: MockServer) -> None:
    server.batches.processing_time = 24 * 3600
    async with client_for(server, "openai") as client:
        batch = client.map(prompts(3), via="batch", batch_options=options(10))
        task = asyncio.ensure_future(batch._collect())
        await server.batches.wait_polls(3)
        assert not task.done()
        assert [s.status for s in batch.states.values()] == ["in_progress"]
        assert "in_progress=1 total=3" in batch._provider_counts()  # the progress bar's
        server.batches.advance(24 * 3600)
        results = await asyncio.wait_for(task, 5)
    assert [r.text for r in results] == prompts(3)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_fallback_after_sends_the_rest_online(server: MockServer, provider: str) -> None:
    server.batches.processing_time = 3600
    async with client_for(server, provider) as client:
        results = await client.map(
            prompts(4), via="batch", fallback_after=0.0, batch_options=options(10)
        )
    assert [r.text for r in results] == prompts(4)
    assert all(r.completion and r.completion.service_tier != BATCH_TIER for r in results)
    assert server.request_count == 4  # the online calls (batch calls are not counted)
    assert [b.status for b in server.batches.batches.values()] == ["cancelled"]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_leaving_early_then_resuming_reattaches(
    server: MockServer, provider: str, tmp_path: Path
) -> None:
    server.batches.processing_time = 3600
    checkpoint = tmp_path / "run.jsonl"
    async with client_for(server, provider) as client:
        async with client.map(
            prompts(6), via="batch", checkpoint=checkpoint, batch_options=options(3)
        ) as batch:
            task = asyncio.ensure_future(batch._collect())
            # Leave once both batches exist and are being polled. (Leaving while the
            # second is still uploading, as a loaded machine made happen, has the resume
            # create it then, and with processing_time an hour it would never end;
            # resuming an interrupted create is the crash tests' job.)
            while server.batches.created < 2:
                await server.batches.wait_polls(server.batches.polls + 1)
            await server.batches.wait_polls(server.batches.polls + 4)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        rows = await status(client, checkpoint)
        assert len(rows) == 2
        assert all(state is None or not state.ended for _, state in rows)
        assert "in_progress" in describe(rows)[0]
        server.batches.advance(3600)
        results = await asyncio.wait_for(
            client.map(prompts(6), via="batch", checkpoint=checkpoint, batch_options=options(3)),
            30,
        )
    assert [r.text for r in results] == prompts(6)
    assert server.batches.created == 2
    assert server.batches.items_submitted() == dict.fromkeys(range(6), 1)
    records = [msgspec.json.decode(line) for line in checkpoint.read_bytes().splitlines()]
    assert sorted(r["index"] for r in records) == list(range(6))


async def test_resumed_items_are_not_submitted(server: MockServer, tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.jsonl"
    async with client_for(server, "openai") as client:
        await client.map(prompts(3), checkpoint=checkpoint)  # online, then the rest by batch
        results = await client.map(
            prompts(5), via="batch", checkpoint=checkpoint, batch_options=options(10)
        )
    assert [r.resumed for r in results] == [True] * 3 + [False] * 2
    assert [r.text for r in results] == prompts(5)
    assert server.batches.items_submitted() == {3: 1, 4: 1}


async def test_cancel_a_checkpoints_batches(server: MockServer, tmp_path: Path) -> None:
    server.batches.processing_time = 3600
    checkpoint = tmp_path / "run.jsonl"
    async with client_for(server, "anthropic") as client:
        batch = client.map(prompts(2), via="batch", checkpoint=checkpoint, batch_options=options())
        task = asyncio.ensure_future(batch._collect())
        await server.batches.wait_polls(2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert len(await cancel(client, checkpoint)) == 1
        assert await cancel(client, checkpoint) == []  # ended now
        server.batches.processing_time = 0
        results = await client.map(
            prompts(2), via="batch", checkpoint=checkpoint, batch_options=options()
        )
    assert [r.text for r in results] == prompts(2)  # the cancelled items went again
    assert server.batches.created == 2


async def test_other_backends_refuse(server: MockServer) -> None:
    async with Client(provider="ollama", base_url=server.root_url, model="m") as client:
        with pytest.raises(UnsupportedParameterError, match="batch"):
            client.map(prompts(1), via="batch")
        with pytest.raises(ConfigurationError, match="via"):
            client.map(prompts(1), via="later")  # type: ignore[call-overload]


def test_cli_provider_batch_status_and_cancel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(f'"prompt {i}"\n' for i in range(5)))
    with MockServer.in_thread() as server:
        flags = ["--base-url", server.url, "--model", "m"]
        args = ["batch", str(source), "-o", str(output), "--provider-batch", *flags]
        assert main([*args, "--poll-interval", "0.001"]) == 0
        assert server.batches.created == 1
        assert main(["batch", "--status", str(output), *flags]) == 0
        assert main(["batch", "--cancel", str(output), *flags]) == 0
        assert main(["batch", "--status", str(tmp_path / "none.jsonl"), *flags]) == 2
    out = capsys.readouterr().out
    assert "5 requests, done (completed)" in out
    assert "nothing to cancel" in out
    assert len(output.read_bytes().splitlines()) == 5
    assert not os.path.exists(str(output) + ".batches.d")


async def test_a_lookup_never_takes_someone_elses_batch(server: MockServer, tmp_path: Path) -> None:
    # A run was killed between its intent and the record of the batch id; meanwhile
    # someone else created an Anthropic batch of the same size (no metadata there).
    checkpoint = tmp_path / "run.jsonl"
    journal = Journal(journal_path(str(checkpoint)))
    journal.open()
    journal.intent(Entry("0123456789ab", "anthropic", [(0, 2)], 2, time.time() - 1))
    journal.close()
    foreign = [{"custom_id": f"theirs-{i}", "params": {"model": "m"}} for i in range(2)]
    async with aiohttp.ClientSession() as http:
        url = server.url_for("anthropic") + "/messages/batches"
        async with http.post(url, json={"requests": foreign}) as resp:
            theirs = (await resp.json())["id"]
    async with client_for(server, "anthropic") as client:
        results = await client.map(
            prompts(2), via="batch", checkpoint=checkpoint, batch_options=options()
        )
    assert [r.text for r in results] == prompts(2)
    assert server.batches.created == 2  # theirs, then ours: their results were not taken
    journal.load()
    assert journal.entries["0123456789ab"].id == theirs  # found by the lookup, then refused


async def test_embeddings_through_the_openai_batch_api(server: MockServer, tmp_path: Path) -> None:
    texts = [["fast", "robust"], ["cheap"], ["x", "y", "z"]]
    items = [EmbeddingRequest(model="e", input=t, dimensions=4) for t in texts]
    checkpoint = tmp_path / "run.jsonl"
    async with client_for(server, "openai") as client:
        online = [(await client.embed(t, model="e", dimensions=4)).vectors for t in texts]
        # a chat item between embeddings: each kind goes in a batch of its own
        results = await client.map(
            [*items[:2], "hello", items[2]],
            via="batch",
            checkpoint=checkpoint,
            batch_options=options(10),
        )
        again = await client.map(
            [*items[:2], "hello", items[2]], via="batch", checkpoint=checkpoint
        )
    vectors = [r.embeddings.vectors for r in results if r.embeddings is not None]
    assert vectors == online
    assert results[2].text == "hello"
    assert {b.endpoint for b in server.batches.batches.values()} == {
        "/v1/embeddings",
        "/v1/chat/completions",
    }
    assert server.batches.created == 3  # embeddings, chat, embeddings
    assert all(r.resumed for r in again)
    assert [r.embeddings.vectors for r in again if r.embeddings is not None] == online


async def test_anthropic_refuses_embeddings(server: MockServer) -> None:
    async with client_for(server, "anthropic") as client:
        item = EmbeddingRequest(model="e", input="x")
        with pytest.raises(UnsupportedParameterError, match="embeddings"):
            await client.map([item], via="batch", batch_options=options())
