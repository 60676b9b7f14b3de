"""Embedding micro-batching over real HTTP: concurrent single-text calls share requests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import llmfast
from llmfast import (
    Client,
    ClientClosedError,
    ConfigurationError,
    DeadlineExceeded,
    EmbeddingRequest,
    Request,
    Response,
    Transport,
    TransportLayer,
)
from llmfast.layers.batch_embed import BatchEmbed
from llmfast.testing import MockServer, Reply


class Upstream(TransportLayer):
    """Sits inside the batching layer and counts cancelled upstream sends."""

    def __init__(self, inner: Transport) -> None:
        super().__init__(inner)
        self.cancelled = 0

    async def send(self, request: Request, /) -> Response:
        try:
            return await self.inner.send(request)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


def make_client(server: MockServer, **options: Any) -> tuple[Client, list[Upstream]]:
    upstream: list[Upstream] = []

    def record(inner: Transport) -> Transport:
        upstream.append(Upstream(inner))
        return upstream[0]

    client = Client(base_url=server.url, model="m", layers=[BatchEmbed(**options), record])
    return client, upstream


async def expected_vectors(server: MockServer, texts: list[str], **params: Any) -> Any:
    """The vectors the server gives these texts in one direct, unbatched call."""
    async with Client(base_url=server.url, model="m") as plain:
        return (await plain.embed(texts, **params)).vectors


def inputs(server: MockServer) -> list[list[str]]:
    return [r.json["input"] for r in server.requests if r.path == "/v1/embeddings"]


async def test_a_thousand_concurrent_embeddings_take_a_few_requests(server: MockServer) -> None:
    texts = [f"text number {i}" for i in range(1000)]
    client, _ = make_client(server, window=0.002, max_inputs=256)
    async with client:
        results = await asyncio.gather(*(client.embed(text) for text in texts))
    assert server.request_count == 4  # 256 + 256 + 256 + 232
    assert sorted(len(batch) for batch in inputs(server)) == [232, 256, 256, 256]
    expected = await expected_vectors(server, texts)
    assert [result.vectors[0] for result in results] == expected
    assert all(result.usage is None and result.model == "m" for result in results)


async def test_identical_texts_in_a_batch_are_sent_once(server: MockServer) -> None:
    texts = ["a", "b", "a", "c", "b", "a"]
    client, _ = make_client(server)
    async with client:
        results = await asyncio.gather(*(client.embed(text) for text in texts))
    assert inputs(server) == [["a", "b", "c"]]
    vectors = [result.vectors[0] for result in results]
    by_text = dict(
        zip(["a", "b", "c"], await expected_vectors(server, ["a", "b", "c"]), strict=True)
    )
    assert vectors == [by_text[text] for text in texts]
    assert vectors[0] is not vectors[2]  # each caller owns its list


async def test_a_full_batch_goes_without_waiting_for_the_window(server: MockServer) -> None:
    client, _ = make_client(server, window=3600.0, max_inputs=5)
    async with client:
        results = await asyncio.gather(*(client.embed(f"t{i}") for i in range(10)))
    assert inputs(server) == [[f"t{i}" for i in range(5)], [f"t{i}" for i in range(5, 10)]]
    assert len(results) == 10


async def test_different_parameters_never_share_a_batch(server: MockServer) -> None:
    client, _ = make_client(server)
    async with client:
        small, large, other, listed = await asyncio.gather(
            client.embed("x", dimensions=4),
            client.embed("x", dimensions=6),
            client.embed("x", dimensions=4, headers={"x-tenant": "b"}),
            client.embed(["x", "y"], dimensions=4),  # a list input goes straight through
        )
    assert server.request_count == 4
    assert (len(small.vectors[0]), len(large.vectors[0]), len(other.vectors[0])) == (4, 6, 4)
    assert len(listed.vectors) == 2
    assert sorted(map(len, inputs(server))) == [1, 1, 1, 2]


async def test_an_error_reaches_exactly_the_callers_of_its_batch(server: MockServer) -> None:
    server.enqueue(Reply.error(500, message="batch failed"))
    client, _ = make_client(server, window=3600.0, max_inputs=3)
    texts = [f"t{i}" for i in range(6)]
    async with client:
        results = await asyncio.gather(
            *(client.embed(text) for text in texts), return_exceptions=True
        )
    assert server.request_count == 2
    failed_batch = set(inputs(server)[0])  # the first request to arrive got the error
    assert len(failed_batch) == 3
    for text, result in zip(texts, results, strict=True):
        if text in failed_batch:
            assert isinstance(result, llmfast.ServerError)
        else:
            assert isinstance(result, llmfast.EmbeddingResponse)


async def test_a_caller_leaving_before_the_batch_goes_is_left_out(server: MockServer) -> None:
    client, _ = make_client(server, window=3600.0, max_inputs=3)
    async with client:
        gone = asyncio.create_task(client.embed("gone"))
        stays = asyncio.create_task(client.embed("stays"))
        await asyncio.sleep(0)  # one loop turn: both have joined the open batch
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        more = await asyncio.gather(client.embed("c"), client.embed("d"))
        await stays
    assert inputs(server) == [["stays", "c", "d"]]
    assert len(more) == 2


async def test_all_callers_leaving_cancels_the_batch_request(server: MockServer) -> None:
    server.enqueue(Reply.stall())
    client, upstream = make_client(server, window=0.0)
    async with client:
        tasks = [asyncio.create_task(client.embed(f"t{i}")) for i in range(3)]
        await server.wait_for_requests(1)
        tasks[0].cancel()
        tasks[1].cancel()
        await asyncio.wait(tasks[:2])
        assert upstream[0].cancelled == 0  # one caller still waits
        tasks[2].cancel()
        await asyncio.wait(tasks[2:])
        assert upstream[0].cancelled == 1
    assert server.request_count == 1


async def test_a_callers_deadline_leaves_the_batch_to_the_others(server: MockServer) -> None:
    client, _ = make_client(server, window=3600.0, max_inputs=3)
    body = EmbeddingRequest(model="m", input="late")
    async with client:
        waiting = asyncio.create_task(client.embed("a"))
        await asyncio.sleep(0)  # one loop turn: "a" waits in the open batch
        with pytest.raises(DeadlineExceeded):
            await client.send(Request(body, deadline=time.monotonic() - 1))
        result, *_ = await asyncio.gather(waiting, client.embed("b"), client.embed("c"))
    assert inputs(server) == [["a", "b", "c"]]
    assert len(result.vectors) == 1


async def test_closing_the_client_fails_the_waiting_callers(server: MockServer) -> None:
    client, _ = make_client(server, window=3600.0)
    waiting = asyncio.create_task(client.embed("a"))
    await asyncio.sleep(0)  # one loop turn: "a" waits in the open batch
    await client.aclose()
    with pytest.raises(ClientClosedError):
        await waiting
    assert server.request_count == 0


async def test_base64_and_bypass(server: MockServer) -> None:
    client, _ = make_client(server)
    async with client:
        encoded = await asyncio.gather(*(client.embed(t, encoding_format="base64") for t in "ab"))
        bypassed = Request(EmbeddingRequest(model="m", input="z"), context={"batch": "bypass"})
        await (await client.send(bypassed)).collect()
    assert inputs(server) == [["a", "b"], "z"]
    expected = await expected_vectors(server, ["a", "b"], encoding_format="base64")
    assert [r.vectors[0] for r in encoded] == expected


def test_configuration_is_validated() -> None:
    with pytest.raises(ConfigurationError):
        BatchEmbed(window=-1)
    with pytest.raises(ConfigurationError):
        BatchEmbed(max_inputs=0)
    assert "window=0.002" in repr(BatchEmbed())
