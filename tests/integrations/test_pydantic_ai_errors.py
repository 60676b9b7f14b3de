"""Failures under LLMFastModel: llmfast's retries run first, then what is left is
raised as pydantic-ai's error types (with the llmfast error as the cause)."""

from __future__ import annotations

import pydantic_ai.exceptions
import pytest
from pydantic_ai import Agent
from pydantic_ai.exceptions import ModelAPIError, ModelHTTPError

from llmfast import errors
from llmfast.layers import Retry
from llmfast.testing import MockServer, Reply
from tests.integrations.test_pydantic_ai_support import (
    PROVIDERS,
    model_for,
    run_usage,
    server,
    shared_server,
)

__all__ = ["server", "shared_server"]  # the fixtures

CATEGORIES = hasattr(ModelHTTPError, "for_category")
"""Whether this pydantic-ai has error categories (2.64 on); older ones get the
``ModelHTTPError``/``ModelAPIError`` alone, with fewer attributes."""


def category(name: str) -> type[ModelAPIError]:
    """The category class ``name``, or ``ModelAPIError`` where the release has none."""
    found: type[ModelAPIError] = getattr(pydantic_ai.exceptions, name, ModelAPIError)
    return found


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("stream", [False, True])
async def test_a_429_then_success_goes_through_llmfast_retries(
    server: MockServer, provider: str, stream: bool
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    retry = Retry(max_attempts=3, sleep=sleep)
    async with model_for(server, provider, layers=[retry]) as model:
        agent = Agent(model)
        server.enqueue(Reply.error(429, retry_after=2), Reply.text("made it"))
        if stream:
            async with agent.run_stream("hi") as streamed:
                output = await streamed.get_output()
            usage = run_usage(streamed)
        else:
            result = await agent.run("hi")
            output, usage = result.output, run_usage(result)
    assert output == "made it"
    assert server.request_count == 2
    assert waits == [2.0]  # retry-after honoured
    assert usage.requests == 1  # one model request, as pydantic-ai sees it


@pytest.mark.parametrize(
    ("reply", "category_name", "llmfast_error"),
    [
        (Reply.error(400), "ModelRequestRejectedError", errors.BadRequestError),
        (Reply.error(401), "ModelAuthenticationError", errors.AuthenticationError),
        (Reply.error(429, retry_after=7), "ModelRateLimitError", errors.RateLimitError),
        (Reply.error(500), "ModelServerError", errors.ServerError),
        (Reply.error(529), "ModelOverloadedError", errors.OverloadedError),
        (
            Reply.error(400, code="context_length_exceeded", message="maximum context length"),
            "ModelContextWindowExceededError",
            errors.ContextLengthError,
        ),
    ],
)
async def test_a_status_error_is_a_model_http_error(
    server: MockServer,
    reply: Reply,
    category_name: str,
    llmfast_error: type[errors.APIStatusError],
) -> None:
    async with model_for(server, "openai") as model:
        server.enqueue(reply)
        with pytest.raises(ModelHTTPError) as caught:
            await Agent(model).run("hi")
    error = caught.value
    assert error.status_code == reply.status
    assert error.model_name == "mock-model"
    assert isinstance(error.__cause__, llmfast_error)
    if CATEGORIES:
        assert isinstance(error, category(category_name))
        assert not error.in_stream
    if reply.status == 429 and CATEGORIES:
        assert error.retry_after == 7
        assert error.headers is not None
        assert error.headers["retry-after"] == "7"
    assert server.request_count == 1  # no retry layer here: the error surfaces at once


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_status_error_before_a_stream_opens(server: MockServer, provider: str) -> None:
    async with model_for(server, provider) as model:
        server.enqueue(Reply.error(503))
        with pytest.raises(ModelHTTPError) as caught:
            async with Agent(model).run_stream("hi") as streamed:
                await streamed.get_output()
    assert caught.value.status_code == 503
    assert isinstance(caught.value, category("ModelUnavailableError"))


@pytest.mark.skipif(not CATEGORIES, reason="pydantic-ai before error categories")
async def test_an_anthropic_overloaded_body_maps_to_overloaded(server: MockServer) -> None:
    async with model_for(server, "anthropic") as model:
        server.enqueue(Reply.error(529))
        with pytest.raises(ModelHTTPError) as caught:
            await Agent(model).run("hi")
    assert isinstance(caught.value, category("ModelOverloadedError"))
    assert caught.value.provider_error_type == "overloaded_error"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_connection_reset_mid_stream_is_a_connection_error(
    server: MockServer, provider: str
) -> None:
    async with model_for(server, provider) as model:
        agent = Agent(model)
        server.enqueue(Reply.reset(after_chunks=3))
        with pytest.raises(category("ModelConnectionError")) as caught:
            async with agent.run_stream("hi") as streamed:
                await streamed.get_output()
    assert not CATEGORIES or caught.value.in_stream
    assert isinstance(caught.value.__cause__, errors.ReadError)  # interrupted or not


async def test_an_error_event_in_the_stream(server: MockServer) -> None:
    async with model_for(server, "openai") as model:
        server.enqueue(
            Reply.stream_error({"message": "boom", "type": "server_error"}, after_chunks=2)
        )
        with pytest.raises(ModelAPIError, match="boom") as caught:
            async with Agent(model).run_stream("hi") as streamed:
                await streamed.get_output()
    assert isinstance(caught.value.__cause__, errors.StreamEventError)
    if CATEGORIES:
        assert caught.value.in_stream
        assert caught.value.provider_error_type == "server_error"


async def test_a_refused_connection_is_a_connection_error() -> None:
    dead = MockServer()
    await dead.start()
    async with model_for(dead, "openai") as model:
        await dead.close()  # nothing listens on the port any more
        with pytest.raises(category("ModelConnectionError")) as caught:
            await Agent(model).run("hi")
    assert getattr(caught.value, "phase", "connect") == "connect"
    assert isinstance(caught.value.__cause__, errors.ConnectError)
