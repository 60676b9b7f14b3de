"""Two gateways sharing one real ``redis-server`` with ``coalesce = true``: a client
of one that disconnects leaves the shared call going for the client of the other, and
the upstream is called once; with nobody else waiting the disconnect cancels it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import openai
import pytest

from llmfast import Event
from llmfast.gateway import Gateway
from llmfast.testing import MockServer, Reply

from .conftest import TEAM_A_KEY, MakeGateway, standard_config

_ANSWER = "every word of the one upstream answer, for both gateways"


@pytest.fixture
async def gateways(
    upstream: MockServer,
    make_gateway: MakeGateway,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[Gateway, Gateway]]:
    monkeypatch.setenv("GATEWAY_REDIS_URL", redis_url)
    config = standard_config(
        upstream,
        model_extra="coalesce = true",
    ).replace("grace = 5", 'grace = 5\nredis_url_env = "GATEWAY_REDIS_URL"')
    async with make_gateway(config) as one, make_gateway(config) as two:
        yield one, two


def _watch(gateway: Gateway, name: str) -> asyncio.Event:
    """An event set when one of ``gateway``'s calls reports the layer event ``name``."""
    seen = asyncio.Event()
    count: Callable[[Event], None] = gateway.metrics.on_event

    def hook(event: Event) -> None:
        if event.name == name:
            seen.set()
        count(event)

    gateway.metrics.on_event = hook
    return seen


async def _open_stream(gateway: Gateway, prompt: str) -> None:
    """A stream through ``gateway``, read until its first line, then left hanging."""
    messages = [{"role": "user", "content": prompt}]
    body = {"model": "fast", "stream": True, "temperature": 0, "messages": messages}
    headers = {"Authorization": f"Bearer {TEAM_A_KEY}"}
    async with aiohttp.ClientSession() as session:
        url = gateway.url + "/v1/chat/completions"
        async with session.post(url, json=body, headers=headers) as response:
            await response.content.readline()
            await asyncio.Event().wait()  # until cancelled: the client goes away


async def _streamed_text(gateway: Gateway, prompt: str) -> str:
    async with openai.AsyncOpenAI(
        base_url=gateway.url + "/v1", api_key=TEAM_A_KEY, max_retries=0
    ) as client:
        stream = await client.chat.completions.create(
            model="fast",
            messages=[{"role": "user", "content": prompt}],
            stream=True,
            temperature=0,  # deterministic: coalesced
        )
        chunks: list[Any] = [chunk async for chunk in stream]
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


async def _cancelled(task: asyncio.Future[Any]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_client_leaving_one_gateway_keeps_the_call_for_the_other(
    gateways: tuple[Gateway, Gateway], upstream: MockServer
) -> None:
    one, two = gateways
    prompt = f"shared {uuid.uuid4().hex}"
    kept = _watch(one, "coalesce.keep")
    joined = _watch(two, "coalesce.join")
    flow = upstream.watch_stream(hold=True)
    upstream.enqueue(Reply.text(_ANSWER, chunk_size=6))
    first = asyncio.ensure_future(_open_stream(one, prompt))
    await flow.wait_started()
    second = asyncio.ensure_future(_streamed_text(two, prompt))
    await asyncio.wait_for(joined.wait(), 5)  # gateway two follows gateway one's call
    await _cancelled(first)  # gateway one's only client disconnects
    await asyncio.wait_for(kept.wait(), 5)  # ... and the call goes on for gateway two
    flow.release()
    assert await asyncio.wait_for(second, 5) == _ANSWER
    await flow.wait_done()
    assert not flow.disconnected
    assert upstream.request_count == 1
    metrics = one.metrics.render().decode()
    assert 'event="kept_for_followers",model="fast",tenant="team-a"} 1.0' in metrics


async def test_a_client_nobody_shares_with_cancels_the_upstream_call(
    gateways: tuple[Gateway, Gateway], upstream: MockServer
) -> None:
    one, _ = gateways
    flow = upstream.watch_stream(hold=True)
    upstream.enqueue(Reply.text(_ANSWER))
    first = asyncio.ensure_future(_open_stream(one, f"alone {uuid.uuid4().hex}"))
    await flow.wait_started()
    await _cancelled(first)
    await flow.wait_disconnected()
    assert upstream.request_count == 1
