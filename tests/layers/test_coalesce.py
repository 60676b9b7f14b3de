"""The coalescing layer over real HTTP: identical calls in flight share one request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

import llmfast
from llmfast import (
    ChatCompletionChunk,
    ChatRequest,
    Client,
    ClientClosedError,
    DeadlineExceeded,
    Event,
    Request,
    Response,
    StreamInterruptedError,
    Transport,
    TransportLayer,
    UserMessage,
)
from llmfast.layers.cache import Cache
from llmfast.layers.coalesce import Coalesce, CoalesceLayer
from llmfast.testing import MockServer, Reply

N = 100


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with MockServer() as server:
        yield server


class Upstream(TransportLayer):
    """Sits inside the coalescing layer and records what it sends upstream."""

    def __init__(self, inner: Transport) -> None:
        super().__init__(inner)
        self.sent = 0
        self.cancelled = 0
        self.responses: list[Response] = []

    async def send(self, request: Request, /) -> Response:
        self.sent += 1
        try:
            response = await self.inner.send(request)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.responses.append(response)
        return response


class Setup:
    def __init__(self, server: MockServer, *, cache: bool = False, **options: Any) -> None:
        self.events: list[Event] = []
        self.coalesce: CoalesceLayer | None = None
        self.upstream: Upstream | None = None

        def coalesce(inner: Transport) -> Transport:
            self.coalesce = Coalesce(**options)(inner)
            return self.coalesce

        def upstream(inner: Transport) -> Transport:
            self.upstream = Upstream(inner)
            return self.upstream

        layers: list[llmfast.Layer] = [coalesce, upstream]
        if cache:
            layers.insert(0, Cache())
        self.client = Client(
            base_url=server.url, model="m", layers=layers, on_event=self.events.append
        )

    @property
    def layer(self) -> CoalesceLayer:
        assert self.coalesce is not None
        return self.coalesce

    @property
    def up(self) -> Upstream:
        assert self.upstream is not None
        return self.upstream

    def joins(self) -> int:
        return sum(1 for e in self.events if e.name == "coalesce.join")


def builtins(chunks: list[ChatCompletionChunk]) -> Any:
    return msgspec.to_builtins(chunks)


async def read_stream(client: Client, prompt: str) -> list[ChatCompletionChunk]:
    async with client.stream(prompt, temperature=0) as stream:
        return [chunk async for chunk in stream]


async def test_identical_calls_share_one_request(server: MockServer) -> None:
    setup = Setup(server)
    async with setup.client as client:
        results = await asyncio.gather(*(client.chat("same", temperature=0) for _ in range(N)))
        assert setup.layer.in_flight == 0
    assert server.request_count == 1
    assert setup.joins() == N - 1
    assert all(result == results[0] for result in results)
    assert results[0].text == "same"


async def test_identical_streams_share_one_request(server: MockServer) -> None:
    server.enqueue(Reply.text("one two three four five six", token_delay=0.001))
    setup = Setup(server)
    async with setup.client as client:
        streams = await asyncio.gather(*(read_stream(client, "x") for _ in range(N)))
    assert server.request_count == 1
    assert len(streams[0]) >= 8
    assert "".join(chunk.text for chunk in streams[0]) == "one two three four five six"
    assert all(builtins(chunks) == builtins(streams[0]) for chunks in streams)


async def test_different_requests_do_not_share(server: MockServer) -> None:
    setup = Setup(server)
    async with setup.client as client:
        results = await asyncio.gather(
            client.chat("a", temperature=0),
            client.chat("b", temperature=0),
            client.chat("a", temperature=0, max_tokens=5),
            read_stream(client, "a"),  # a stream never shares with a plain call
        )
    assert server.request_count == 4
    assert [results[0].text, results[1].text, results[2].text] == ["a", "b", "a"]


async def test_sampled_and_bypassed_calls_are_not_coalesced(server: MockServer) -> None:
    setup = Setup(server)
    async with setup.client as client:
        await asyncio.gather(*(client.chat("s", temperature=1.0) for _ in range(3)))
        assert server.request_count == 3
        bypass = Request(ChatRequest(model="m", messages=[UserMessage("s")], temperature=0))

        async def bypassed() -> None:
            request = Request(bypass.body, context={"coalesce": "bypass"})
            await (await client.send(request)).collect()

        await asyncio.gather(bypassed(), bypassed())
        assert server.request_count == 5
    setup = Setup(server, coalescable=lambda request: True)
    async with setup.client as client:
        await asyncio.gather(*(client.chat("s", temperature=1.0) for _ in range(3)))
    assert server.request_count == 6


async def test_a_late_joiner_gets_every_chunk_from_the_start(server: MockServer) -> None:
    server.enqueue(Reply.text("alpha beta gamma delta epsilon", token_delay=0.05))
    setup = Setup(server)
    async with setup.client as client, client.stream("x", temperature=0) as first:
        iterator = aiter(first)
        head = [await anext(iterator), await anext(iterator)]  # the stream is under way
        late = await read_stream(client, "x")  # joins now, and reads to the end
        rest = [chunk async for chunk in iterator]
    assert server.request_count == 1
    assert setup.joins() == 1
    assert builtins(late) == builtins(head + rest)
    assert "".join(chunk.text for chunk in late) == "alpha beta gamma delta epsilon"


async def test_cancelling_all_but_one_leaves_the_last_complete(server: MockServer) -> None:
    server.enqueue(Reply.text("a b c d e f g h", token_delay=0.02))
    setup = Setup(server)
    started = 0
    all_started = asyncio.Event()

    async def reader() -> list[ChatCompletionChunk]:
        nonlocal started
        chunks = []
        async with setup.client.stream("x", temperature=0) as stream:
            async for chunk in stream:
                chunks.append(chunk)
                if len(chunks) == 2:
                    started += 1
                    if started == N:
                        all_started.set()
        return chunks

    async with setup.client:
        tasks = [asyncio.create_task(reader()) for _ in range(N)]
        await asyncio.wait_for(all_started.wait(), 5)
        for task in tasks[:-1]:
            task.cancel()
        await asyncio.wait(tasks[:-1])
        assert all(task.cancelled() for task in tasks[:-1])  # they left mid-stream
        last = await tasks[-1]
    assert "".join(chunk.text for chunk in last) == "a b c d e f g h"
    assert server.request_count == 1
    assert setup.up.responses[0].closed


async def test_cancelling_all_plain_callers_but_one(server: MockServer) -> None:
    server.enqueue(Reply.text("done", delay=0.2))
    setup = Setup(server)
    async with setup.client as client:
        tasks = [asyncio.create_task(client.chat("x", temperature=0)) for _ in range(N)]
        await server.wait_for_requests(1)
        for task in tasks[:-1]:
            task.cancel()
        await asyncio.wait(tasks[:-1])
        assert all(task.cancelled() for task in tasks[:-1])
        assert (await tasks[-1]).text == "done"
    assert server.request_count == 1
    assert setup.up.cancelled == 0


async def test_the_last_stream_listener_leaving_cancels_upstream(server: MockServer) -> None:
    server.enqueue(Reply.stall(after_chunks=2))  # two chunks, then silence until hang-up
    setup = Setup(server)
    ready = 0
    all_ready = asyncio.Event()

    async def reader() -> None:
        nonlocal ready
        async with setup.client.stream("a b c", temperature=0) as stream:
            async for _ in stream:
                ready += 1
                if ready == 2 * N:
                    all_ready.set()

    async with setup.client:
        tasks = [asyncio.create_task(reader()) for _ in range(N)]
        await asyncio.wait_for(all_ready.wait(), 5)
        (response,) = setup.up.responses
        for task in tasks[:-1]:
            task.cancel()
        await asyncio.wait(tasks[:-1])
        assert not response.closed  # one listener is left: the call goes on
        assert setup.layer.in_flight == 1
        tasks[-1].cancel()
        await asyncio.wait(tasks[-1:])
        assert response.closed  # the last one left: the upstream stream was closed
        assert setup.layer.in_flight == 0
        # A new identical call starts afresh rather than joining the abandoned one.
        assert "".join(chunk.text for chunk in await read_stream(setup.client, "a b c")) == "a b c"
    assert server.request_count == 2


async def test_the_last_plain_caller_leaving_cancels_upstream(server: MockServer) -> None:
    server.enqueue(Reply.stall())  # no answer at all until hang-up
    setup = Setup(server)
    async with setup.client as client:
        tasks = [asyncio.create_task(client.chat("x", temperature=0)) for _ in range(N)]
        await server.wait_for_requests(1)
        for task in tasks[:-1]:
            task.cancel()
        await asyncio.wait(tasks[:-1])
        assert setup.up.cancelled == 0
        tasks[-1].cancel()
        await asyncio.wait(tasks[-1:])
        assert setup.up.cancelled == 1  # the upstream send itself was cancelled
        assert setup.layer.in_flight == 0
    assert server.request_count == 1


async def test_closing_a_stream_early_leaves_the_others_untouched(server: MockServer) -> None:
    server.enqueue(Reply.text("p q r s t", token_delay=0.02))
    setup = Setup(server)
    async with setup.client as client, client.stream("x", temperature=0) as keeper:
        keep = aiter(keeper)
        first = await anext(keep)
        async with client.stream("x", temperature=0) as quitter:
            async for _ in quitter:
                break  # leaves after one chunk
        rest = [chunk async for chunk in keep]
    assert "".join(chunk.text for chunk in [first, *rest]) == "p q r s t"
    assert server.request_count == 1


async def test_an_error_reaches_every_plain_caller(server: MockServer) -> None:
    server.enqueue(Reply.error(500, message="upstream broke"))
    setup = Setup(server)
    async with setup.client as client:
        results = await asyncio.gather(
            *(client.chat("x", temperature=0) for _ in range(N)), return_exceptions=True
        )
    assert server.request_count == 1
    assert all(isinstance(r, llmfast.ServerError) for r in results)
    assert all("upstream broke" in str(r) for r in results)


async def test_a_stream_error_reaches_every_listener(server: MockServer) -> None:
    server.enqueue(Reply.stream_error({"message": "mid-stream failure"}, after_chunks=3))
    setup = Setup(server)
    async with setup.client as client:
        results = await asyncio.gather(
            *(read_stream(client, "a b c d e") for _ in range(N)), return_exceptions=True
        )
    assert server.request_count == 1
    for result in results:
        assert isinstance(result, StreamInterruptedError)
        assert len(result.chunks) == 3  # every listener got every chunk before the error
        assert isinstance(result.__cause__, llmfast.StreamEventError)


async def test_a_callers_own_deadline_leaves_the_others_untouched(server: MockServer) -> None:
    server.enqueue(Reply.text("slow", delay=0.1))
    setup = Setup(server)
    body = ChatRequest(model="m", messages=[UserMessage("x")], temperature=0)
    async with setup.client as client:
        leader = asyncio.create_task(client.chat(body))
        await server.wait_for_requests(1)
        with pytest.raises(DeadlineExceeded):
            await client.send(Request(body, deadline=time.monotonic() - 1))
        assert (await leader).text == "slow"
    assert server.request_count == 1


async def test_closing_the_client_fails_the_waiting_callers(server: MockServer) -> None:
    server.enqueue(Reply.stall())
    setup = Setup(server)
    tasks = [asyncio.create_task(setup.client.chat("x", temperature=0)) for _ in range(3)]
    await server.wait_for_requests(1)
    await setup.client.aclose()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, ClientClosedError) for r in results)


async def test_coalescing_with_the_cache(server: MockServer) -> None:
    setup = Setup(server, cache=True)
    async with setup.client as client:
        results = await asyncio.gather(*(client.chat("c", temperature=0) for _ in range(20)))
        again = await client.chat("c", temperature=0)
        streams = await asyncio.gather(*(read_stream(client, "c") for _ in range(20)))
        replay = await read_stream(client, "c")
    assert server.request_count == 2  # one plain call and one stream, for 42 callers
    assert again == results[0]
    assert all(builtins(chunks) == builtins(replay) for chunks in streams)
    assert setup.joins() == 19 * 2
