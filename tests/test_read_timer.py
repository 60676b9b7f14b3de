"""aiohttp's read timeout on the loop's shared timer: the same ``ReadTimeout`` when a
server stops sending, no timer of its own per call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

import llmfast
from llmfast import Client, Timeouts, read_timer
from llmfast.testing import MockServer

SLACK = 0.3  # the scheduler's slack allowed past a limit on this shared machine
_BODY = (
    b'{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}'
)


@pytest.fixture
async def paced() -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A server sending half its body, then (until released) nothing; under
    ``/drip`` it sends the rest a piece every 0.1 s instead."""
    release = asyncio.Event()

    async def handle(request: web.Request) -> web.StreamResponse:
        out = web.StreamResponse(headers={"Content-Type": "application/json"})
        out.content_length = len(_BODY)
        await out.prepare(request)
        half = len(_BODY) // 2
        await out.write(_BODY[:half])
        if request.path.startswith("/drip"):
            rest = _BODY[half:]
            for start in range(0, len(rest), 10):  # 0.8 s in all, 0.1 s between pieces
                await asyncio.sleep(0.1)
                await out.write(rest[start : start + 10])
        else:
            await release.wait()
        return out

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handle)
    app.router.add_post("/drip/v1/chat/completions", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/v1", release
    finally:
        release.set()
        await runner.cleanup()


async def test_a_body_that_stops_mid_way_times_out(paced: tuple[str, asyncio.Event]) -> None:
    url, _ = paced
    async with Client(base_url=url, model="m", timeouts=Timeouts(read=0.3), layers=[]) as client:
        started = time.monotonic()
        with pytest.raises(llmfast.ReadTimeout):
            await client.chat("hi")
        assert 0.3 <= time.monotonic() - started < 0.3 + SLACK


async def test_the_limit_moves_with_each_read(paced: tuple[str, asyncio.Event]) -> None:
    url, _ = paced  # the rest drips for longer than the limit, a byte within it each time
    drip = url.replace("/v1", "/drip/v1")
    async with Client(base_url=drip, model="m", timeouts=Timeouts(read=0.4), layers=[]) as client:
        response = await client.chat("hi")
    assert response.text == "ok"


async def test_calls_make_no_timer_each() -> None:
    loop = asyncio.get_running_loop()
    made = 0
    call_at = loop.call_at

    def counting_call_at(when: float, callback: object, *args: object, **kw: object) -> object:
        nonlocal made
        made += 1
        return call_at(when, callback, *args, **kw)  # type: ignore[arg-type]

    async with MockServer() as server, Client(base_url=server.url, model="m", layers=[]) as client:
        await client.chat("warm up")
        loop.call_at = counting_call_at  # type: ignore[method-assign, assignment]
        try:
            for _ in range(20):
                assert (await client.chat("hi")).text
                async with client.stream("hi") as stream:
                    async for _chunk in stream:
                        pass
        finally:
            del loop.call_at
    assert made <= 4  # aiohttp's own read timer: two or more per call, 80+


def test_an_unknown_connector_is_left_alone() -> None:
    class Other(aiohttp.BaseConnector):
        pass

    connector = object.__new__(Other)
    assert read_timer.install(connector) is False
