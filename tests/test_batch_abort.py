"""A batch stops by itself when every item would fail the same way (a rejected key, a
server that is not there, an open circuit), with one ``BatchAbortedError``; failures that
depend on the item never stop it. Real HTTP to ``MockServer`` or to a closed port."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmfast import (
    AuthenticationError,
    CircuitOpenError,
    Client,
    ConnectError,
    ContextLengthError,
    NotFoundError,
    RateLimitError,
    ServerError,
    SyncClient,
    UnprocessableEntityError,
    UnsupportedParameterError,
)
from llmfast.batch import ABORT_AFTER, AbortPolicy, run_batch
from llmfast.errors import BadRequestError, BatchAbortedError, QueueTimeout
from llmfast.layers import CircuitBreaker, Retry
from llmfast.testing import MockServer, Reply


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with MockServer() as server:
        yield server


def prompts(n: int) -> list[str]:
    return [f"prompt {i}" for i in range(n)]


def records(path: Path) -> list[dict[str, Any]]:
    return [msgspec.json.decode(line) for line in path.read_bytes().splitlines()]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_rejected_key_stops_the_batch_after_a_handful_of_requests(
    tmp_path: Path,
) -> None:
    checkpoint = tmp_path / "run.jsonl"
    async with MockServer(default=Reply.error(401, message="Incorrect API key")) as server:
        async with Client(base_url=server.url, model="m", layers=[]) as client:
            with pytest.raises(BatchAbortedError) as caught:
                await client.map(prompts(200), concurrency=8, checkpoint=checkpoint)
            assert server.request_count <= 8  # at most the calls already in flight
        error = caught.value
        assert isinstance(error.cause, AuthenticationError)
        assert error.__cause__ is error.cause
        assert (error.done, error.total, error.checkpoint) == (0, 200, str(checkpoint))
        assert 1 <= error.failed <= 8
        assert str(error).startswith(
            "batch stopped: the API key was rejected: AuthenticationError: HTTP 401: "
            "Incorrect API key"
        )
        assert f"(0 of 200 done, {error.failed} failed)" in str(error)
        assert f"resume from {checkpoint}" in str(error)
        # What finished is recorded, whole; the calls cancelled in flight are not.
        done = records(checkpoint)
        assert len(done) == error.failed
        assert all(r["error"]["status"] == 401 for r in done)

        # With the key fixed, the same call resumes and finishes every item once.
        server.default = Reply.echo()
        server.reset()
        async with Client(base_url=server.url, model="m", layers=[]) as client:
            results = await client.map(prompts(200), concurrency=8, checkpoint=checkpoint)
        assert [r.text for r in results] == prompts(200)
        assert server.request_count == 200


async def test_a_refused_connection_stops_after_the_first_items_fail_alike() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    layers = [Retry(max_attempts=3, initial_backoff=0.01)]
    async with Client(base_url=url, model="m", layers=layers) as client:
        batch = client.map(prompts(200), concurrency=16)
        with pytest.raises(BatchAbortedError) as caught:
            async with batch:
                async for _ in batch:
                    pass
    error = caught.value
    assert isinstance(error.cause, ConnectError)
    assert error.reason == f"the first {ABORT_AFTER} items all failed the same way"
    assert ABORT_AFTER <= batch.failed <= 16  # the first items; the rest never started
    assert batch.aborted is error
    assert error.checkpoint is None
    assert "resume from" not in str(error)


async def test_keep_going_records_every_failure(server: MockServer) -> None:
    server.default = Reply.error(401)
    async with Client(base_url=server.url, model="m", layers=[]) as client:
        results = await client.map(prompts(30), concurrency=4, abort_on_systematic=False)
    assert [type(r.error) for r in results] == [AuthenticationError] * 30
    assert server.request_count == 30


async def test_mixed_failures_never_stop_a_batch(server: MockServer, tmp_path: Path) -> None:
    # The first finished items are all the same 400 (a per-item error): no stop.
    server.enqueue(*[Reply.error(400, message="bad prompt")] * (ABORT_AFTER + 2))
    for i in range(40):
        server.enqueue(Reply.error(400, message="bad") if i % 3 == 0 else Reply.echo())
    async with Client(base_url=server.url, model="m", layers=[]) as client:
        results = await client.map(prompts(60), concurrency=1, checkpoint=tmp_path / "c.jsonl")
    failed = [r for r in results if not r.ok]
    assert len(results) == 60
    assert all(isinstance(r.error, BadRequestError) for r in failed)
    assert len(failed) == ABORT_AFTER + 2 + 14
    assert server.request_count == 60


async def test_the_same_server_error_on_the_first_items_stops(server: MockServer) -> None:
    server.default = Reply.error(502, message="Bad Gateway")
    async with Client(base_url=server.url, model="m", layers=[]) as client:
        with pytest.raises(BatchAbortedError) as caught:
            await client.map(prompts(50), concurrency=1)
    assert isinstance(caught.value.cause, ServerError)
    assert server.request_count == ABORT_AFTER


async def test_server_errors_after_a_success_do_not_stop(server: MockServer) -> None:
    server.enqueue(Reply.echo(), *[Reply.error(502)] * 10)
    async with Client(base_url=server.url, model="m", layers=[]) as client:
        results = await client.map(prompts(12), concurrency=1)
    assert [r.ok for r in results] == [True] + [False] * 10 + [True]


async def test_a_missing_model_stops_before_any_success_but_not_after(
    server: MockServer,
) -> None:
    server.default = Reply.error(404, message="The model `nope` does not exist")
    async with Client(base_url=server.url, model="nope", layers=[]) as client:
        with pytest.raises(BatchAbortedError, match="model or URL was not found") as caught:
            await client.map(prompts(50), concurrency=1)
        assert isinstance(caught.value.cause, NotFoundError)
        assert server.request_count == 1
        # One item's model missing in a batch that works otherwise: recorded, not fatal.
        server.default = Reply.echo()
        server.enqueue(Reply.echo(), Reply.error(404))
        results = await client.map(prompts(4), concurrency=1)
        assert [r.ok for r in results] == [True, False, True, True]


async def test_an_exhausted_quota_stops_at_once(server: MockServer) -> None:
    server.default = Reply.error(429, code="insufficient_quota", message="quota")
    async with Client(base_url=server.url, model="m", layers=[]) as client:
        with pytest.raises(BatchAbortedError, match="quota is exhausted") as caught:
            await client.map(prompts(50), concurrency=1)
    assert isinstance(caught.value.cause, RateLimitError)
    assert server.request_count == 1


async def test_a_circuit_that_stays_open_stops_the_batch(server: MockServer) -> None:
    server.enqueue(Reply.echo(), Reply.echo())
    server.default = Reply.error(503)
    layers = [CircuitBreaker(consecutive=2, cooldown=600)]
    async with Client(base_url=server.url, model="m", layers=layers) as client:
        batch = client.map(prompts(100), concurrency=1)
        with pytest.raises(BatchAbortedError, match="circuit stayed open") as caught:
            await batch
    assert isinstance(caught.value.cause, CircuitOpenError)
    assert server.request_count == 4  # 2 successes, 2 failures open the circuit
    assert (batch.succeeded, batch.failed) == (2, 2 + ABORT_AFTER)


async def test_stop_on_error_still_raises_the_item_error(server: MockServer) -> None:
    server.default = Reply.error(401)
    async with Client(base_url=server.url, model="m", layers=[]) as client:
        with pytest.raises(AuthenticationError):
            await client.map(prompts(10), concurrency=1, stop_on_error=True)


async def test_the_sync_client_stops_too(server: MockServer) -> None:
    # The server runs on this loop; SyncClient runs its own loop in a thread.
    import asyncio

    server.default = Reply.error(401)

    def run() -> None:
        with SyncClient(base_url=server.url, model="m", layers=[]) as client:
            list(client.map(prompts(40), concurrency=2))

    with pytest.raises(BatchAbortedError):
        await asyncio.to_thread(run)
    assert server.request_count <= 2


def test_the_policy_compares_errors_by_class_and_status_not_message() -> None:
    policy = AbortPolicy(after=3)
    first = ServerError(502, "Bad Gateway", request_id="a")
    assert policy.failed(first) is None
    assert policy.failed(ServerError(502, "<html>proxy b</html>", request_id="b")) is None
    assert policy.failed(ServerError(502, "Bad Gateway", request_id="c")) is not None
    policy = AbortPolicy(after=2)
    assert policy.failed(ConnectError("refused by 10.0.0.1")) is None
    assert policy.failed(ConnectError("refused by 10.0.0.2")) is not None
    policy = AbortPolicy(after=3)
    assert policy.failed(ServerError(502, "Bad Gateway")) is None
    assert policy.failed(ServerError(503, "Unavailable")) is None  # a different one
    assert policy.failed(ServerError(502, "Bad Gateway")) is None
    policy.succeeded()
    assert [policy.failed(ServerError(502, "x")) for _ in range(10)] == [None] * 10
    # A call that cannot even be made (raised before sending) is systematic too.
    policy = AbortPolicy(after=2)
    assert policy.failed(UnsupportedParameterError("seed", "x")) is None
    assert policy.failed(UnsupportedParameterError("seed", "x")) is not None
    # Waiting too long in the client's own limiter is pacing, never a reason to stop.
    policy = AbortPolicy(after=2)
    assert [policy.failed(QueueTimeout("queue")) for _ in range(5)] == [None] * 5


async def test_run_batch_takes_the_keyword_too(server: MockServer) -> None:
    server.default = Reply.error(401)
    async with Client(base_url=server.url, model="m", layers=[]) as client:
        results = await run_batch(client, prompts(3), abort_on_systematic=False)
    assert [r.ok for r in results] == [False] * 3


_PER_ITEM = st.sampled_from(
    [
        None,  # a success
        BadRequestError(400, "bad prompt"),
        UnprocessableEntityError(422, "no"),
        ContextLengthError(400, "too long"),
        RateLimitError(429, "slow down", body={"error": {"code": "rate_limit_exceeded"}}),
        QueueTimeout("queue"),
    ]
)


@settings(max_examples=200, deadline=None)
@given(outcomes=st.lists(_PER_ITEM, max_size=60))
def test_failures_that_depend_on_the_item_never_stop_a_batch(
    outcomes: list[Exception | None],
) -> None:
    policy = AbortPolicy()
    for outcome in outcomes:
        if outcome is None:
            policy.succeeded()
        else:
            assert policy.failed(outcome) is None


@settings(max_examples=100, deadline=None)
@given(before=st.lists(_PER_ITEM, max_size=20))
def test_a_rejected_key_stops_whatever_came_before(before: list[Exception | None]) -> None:
    policy = AbortPolicy()
    for outcome in before:
        if outcome is None:
            policy.succeeded()
        else:
            policy.failed(outcome)
    assert policy.failed(AuthenticationError(401, "bad key")) == "the API key was rejected"
