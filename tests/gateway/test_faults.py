"""Upstream faults behind the gateway, with the ``openai`` SDK as the client: a retried
5xx, an open circuit (503, and ``/health`` degraded), an idle stream cut by the
model's ``idle_timeout``, and the errors counted in ``/metrics``."""

from __future__ import annotations

import aiohttp
import openai
import pytest

from llmfast.gateway import Gateway
from llmfast.testing import MockServer, Reply

from .conftest import MakeGateway


def _config(upstream: MockServer, model: str) -> str:
    return f"""
[server]
listen = "127.0.0.1:0"
[models.fast]
{model}
[[models.fast.deployments]]
base_url = "{upstream.url}"
api_key_env = "UPSTREAM_KEY"
model = "upstream-model"
"""


def sdk(gateway: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="any", max_retries=0)


async def _get(gateway: Gateway, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(gateway.url + path) as response:
        return response.status, await response.text()


async def test_a_5xx_is_retried_for_the_caller(
    upstream: MockServer, make_gateway: MakeGateway
) -> None:
    upstream.enqueue(Reply.error(500, retry_after=0), Reply.error(503, retry_after=0))
    config = _config(upstream, "retry = { max_attempts = 3 }")
    async with make_gateway(config) as gateway, sdk(gateway) as client:
        reply = await client.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "third time"}]
        )
        _, metrics = await _get(gateway, "/metrics")
    assert reply.choices[0].message.content == "third time"
    assert upstream.request_count == 3
    labels = 'event="retry",model="fast",tenant="anonymous"'
    assert f"llmfast_gateway_layer_events_total{{{labels}}} 2.0" in metrics


async def test_an_open_circuit_gives_503_and_degraded_health(
    upstream: MockServer, make_gateway: MakeGateway
) -> None:
    upstream.enqueue(Reply.error(500), Reply.error(500))
    # A deadline shorter than the cooldown: no call waits for the circuit to half-open.
    model = "retry = 1\ntimeout = 5\nbreaker = { consecutive = 2, cooldown = 60 }"
    config = _config(upstream, model)
    async with make_gateway(config) as gateway, sdk(gateway) as client:
        for _ in range(2):
            with pytest.raises(openai.InternalServerError):
                await client.chat.completions.create(
                    model="fast", messages=[{"role": "user", "content": "x"}]
                )
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(
                model="fast", messages=[{"role": "user", "content": "x"}]
            )
        status, health = await _get(gateway, "/health")
        _, metrics = await _get(gateway, "/metrics")
    assert caught.value.status_code == 503
    assert upstream.request_count == 2  # the open circuit sent nothing
    assert status == 503
    assert '"fast":false' in health.replace(" ", "")
    labels = 'code="upstream_unavailable",model="fast",tenant="anonymous"'
    assert f"llmfast_gateway_errors_total{{{labels}}} 1.0" in metrics
    assert 'llmfast_gateway_errors_total{code="http_500"' in metrics


async def test_an_idle_stream_is_cut_by_the_models_idle_timeout(
    upstream: MockServer, make_gateway: MakeGateway
) -> None:
    upstream.enqueue(Reply.text("a b c", token_delay=30))  # the first word, then silence
    config = _config(upstream, "retry = 1\nidle_timeout = 0.2")
    async with make_gateway(config) as gateway, sdk(gateway) as client:
        stream = await client.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "x"}], stream=True
        )
        texts: list[str] = []
        with pytest.raises(openai.APIError, match="did not answer in time"):
            async for chunk in stream:
                texts.extend(c.delta.content or "" for c in chunk.choices)
        await upstream.wait_open_connections(0, timeout=5)  # the upstream call is closed
    assert "".join(texts) == "a "
