"""An exhausted quota is not retried: OpenAI's 429 ``insufficient_quota`` (or
``billing_hard_limit_reached``), as a status or inside a stream, reaches the server once,
whatever the backend; a plain 429 rate limit still is retried."""

from __future__ import annotations

from typing import Any

import pytest

from llmfast import Client
from llmfast.backends.openai import OpenAIBackend
from llmfast.backends.openai_responses import OpenAIResponsesBackend
from llmfast.errors import QuotaExceededError, RateLimitError, StreamEventError
from llmfast.layers import Retry, RetryPolicy
from llmfast.testing import MockServer, Reply
from tests.fakeclock import FakeClock

BACKENDS = {"openai": OpenAIBackend, "openai-responses": OpenAIResponsesBackend}
QUOTA = [("insufficient_quota", "insufficient_quota"), ("billing_hard_limit_reached", None)]


def _client(server: MockServer, kind: str, clock: FakeClock) -> Client:
    backend = BACKENDS[kind](server.url, api_key="sk-secret", model="m")
    retry = Retry(max_attempts=4, sleep=clock.sleep, clock=clock)
    return Client(backend, layers=[retry])


@pytest.mark.parametrize("kind", sorted(BACKENDS))
@pytest.mark.parametrize(("code", "type_"), QUOTA)
async def test_a_quota_429_reaches_the_server_once(kind: str, code: str, type_: str | None) -> None:
    clock = FakeClock()
    async with MockServer() as server, _client(server, kind, clock) as client:
        server.enqueue(Reply.error(429, code=code, type=type_, retry_after=1))
        with pytest.raises(QuotaExceededError) as caught:
            await client.chat("hello")
        assert server.request_count == 1
        assert clock.sleeps == []
        assert isinstance(caught.value, RateLimitError)  # `except RateLimitError` still works
        assert caught.value.status == 429
        assert "sk-secret" not in str(caught.value)


@pytest.mark.parametrize("kind", sorted(BACKENDS))
async def test_a_quota_error_event_before_the_first_chunk_is_not_retried(kind: str) -> None:
    clock = FakeClock()
    error = {"type": "insufficient_quota", "code": "insufficient_quota", "message": "no quota"}
    async with MockServer() as server, _client(server, kind, clock) as client:
        server.enqueue(Reply.stream_error(error, after_chunks=0))
        with pytest.raises(StreamEventError):
            async with client.stream("hello") as stream:
                async for _ in stream:
                    pass
        assert server.request_count == 1


@pytest.mark.parametrize("kind", sorted(BACKENDS))
async def test_a_rate_limit_429_is_still_retried(kind: str) -> None:
    clock = FakeClock()
    async with MockServer() as server, _client(server, kind, clock) as client:
        server.enqueue(Reply.error(429, code="rate_limit_exceeded", retry_after=1))
        assert (await client.chat("hello")).text == "hello"
        assert server.request_count == 2
        assert clock.sleeps == [1.0]


@pytest.mark.parametrize(
    "payload",
    [
        {"code": "insufficient_quota", "message": "You exceeded your current quota"},
        {"type": "billing_hard_limit_reached", "message": "Billing hard limit reached"},
    ],
)
def test_the_policy_refuses_quota_payloads_in_stream_errors(payload: dict[str, Any]) -> None:
    # As the Responses parser raises it from ``response.failed`` (status from the code).
    policy = RetryPolicy()
    assert not policy.is_retryable(StreamEventError(payload, status=429))
    assert not policy.is_retryable(StreamEventError({"error": payload}))
    assert policy.is_retryable(StreamEventError({"code": "rate_limit_exceeded"}, status=429))
