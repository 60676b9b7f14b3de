"""A blocking call that the calling thread's own event loop would have to answer fails at
once instead of hanging until the read timeout; ``MockServer.in_thread()`` is the way to
serve sync code."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from aiohttp import web

from llmfast import Client, SyncClient
from llmfast.testing import MockServer, Reply


def server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "llmfast-mock-server"]


async def test_a_sync_call_to_a_server_on_this_threads_loop_raises_at_once() -> None:
    # What a notebook does: `await server.start()` in one cell, a SyncClient in the next.
    async with MockServer() as server:
        with SyncClient(base_url=server.url, model="m") as client:
            started = time.monotonic()
            with pytest.raises(RuntimeError, match=r"in_thread\(\)"):
                client.chat("hello")
            with pytest.raises(RuntimeError, match="would wait forever"):
                client.stream("hello").start()
            assert time.monotonic() - started < 5
        assert server.request_count == 0


async def test_any_server_on_this_threads_loop_is_detected_too() -> None:
    # Not a MockServer: a plain aiohttp app on the test's loop, found by its listening socket.
    async def answer(_: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        with (
            SyncClient(base_url=f"http://localhost:{port}/v1", model="m") as client,
            pytest.raises(RuntimeError, match=f"port {port}"),
        ):
            client.chat("hello")
    finally:
        await runner.cleanup()


async def test_a_sync_call_to_a_server_on_another_loop_works_from_a_running_loop() -> None:
    with (
        MockServer.in_thread() as server,
        SyncClient(base_url=server.url, model="m") as client,
    ):
        assert client.chat("from a notebook cell").text == "from a notebook cell"


def test_in_thread_serves_sync_code_and_leaves_no_thread() -> None:
    before = set(threading.enumerate())
    with MockServer.in_thread() as server:
        assert len(server_threads()) == 1
        server.enqueue(Reply.text("Paris"))
        with SyncClient(base_url=server.url, model="m") as client:
            assert client.chat("Capital of France?").text == "Paris"
            assert client.chat("echo me").text == "echo me"
        assert server.request_count == 2
        assert server.requests[0].json["messages"][0]["content"] == "Capital of France?"
    assert server_threads() == []
    assert set(threading.enumerate()) == before


async def test_in_thread_serves_async_clients_and_its_waits_work_from_any_loop() -> None:
    with MockServer.in_thread() as server:
        async with Client(base_url=server.url, model="m") as client:
            server.enqueue(Reply.text("slow", delay=0.05))
            call = asyncio.create_task(client.chat("x"))
            await server.wait_for_requests(1)
            assert (await call).text == "slow"
            assert server.open_connections == 1
        await server.wait_open_connections(0)
    assert server_threads() == []


def test_in_thread_releases_a_stalled_request_when_it_closes() -> None:
    errors: list[BaseException] = []
    with MockServer.in_thread() as server:
        server.enqueue(Reply.stall())
        client = SyncClient(base_url=server.url, model="m", layers=[])

        def call() -> None:
            try:
                client.chat("stuck")
            except BaseException as exc:
                errors.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        asyncio.run(server.wait_for_requests(1))
    caller.join(10)
    client.close()
    assert not caller.is_alive()
    assert len(errors) == 1
    assert server_threads() == []
