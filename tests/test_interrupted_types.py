"""An interrupted stream keeps its cause's type.

After the first chunk, a failure becomes a ``StreamInterruptedError`` carrying the
partial result; it is also an instance of the cause's class (``IdleTimeout``, so
``TimeoutError``; ``ReadError``; ``StreamEventError``...), with the cause's attributes.
Each cause is produced over real HTTP by the test server's faults.
"""

from __future__ import annotations

import pickle

import pytest

import llmfast
from llmfast import Client, Timeouts
from llmfast.errors import StreamInterruptedError
from llmfast.layers import Retry
from llmfast.layers.retry_policy import RetryPolicy
from llmfast.testing import MockServer, Reply

PROMPT = "one two three"
OVERLOADED = {"message": "Overloaded", "type": "overloaded_error", "code": 529}


async def _interrupted(
    server: MockServer,
    reply: Reply,
    *,
    timeouts: Timeouts | None = None,
    provider: str = "openai",
    retry: bool = False,
) -> StreamInterruptedError:
    server.enqueue(reply)
    key = None if provider == "ollama" else "k"
    backend = llmfast.backend_for(provider, base_url=server.url_for(provider), api_key=key)
    layers: list[llmfast.Layer] = [Retry(max_attempts=3)] if retry else []
    client = Client(backend, model="m", layers=layers, timeouts=timeouts or Timeouts())
    async with client:
        with pytest.raises(StreamInterruptedError) as caught:
            async with client.stream(PROMPT) as stream:
                await stream.collect()
    error = caught.value
    assert error.partial_text == "one "  # role chunk + "one ", or the first content
    assert error.chunks
    assert server.request_count == 1  # committed: never retried, whatever the cause
    return error


async def test_idle_timeout_is_a_timeout_error(server: MockServer) -> None:
    reply = Reply.stall(after_chunks=2, keepalive=0.02)
    error = await _interrupted(server, reply, timeouts=Timeouts(idle=0.2), retry=True)
    assert isinstance(error, llmfast.IdleTimeout)
    assert isinstance(error, llmfast.Timeout)
    assert isinstance(error, TimeoutError)
    assert type(error).__name__ == "StreamInterruptedError[IdleTimeout]"
    assert type(error.__cause__) is llmfast.IdleTimeout
    with pytest.raises(TimeoutError) as caught:  # what a plain `except TimeoutError` sees
        raise error
    assert caught.value is error


async def test_read_timeout(server: MockServer) -> None:
    error = await _interrupted(server, Reply.stall(after_chunks=2), timeouts=Timeouts(read=0.2))
    assert isinstance(error, llmfast.ReadTimeout)
    assert isinstance(error, TimeoutError)


async def test_deadline_mid_stream_is_a_timeout_error(server: MockServer) -> None:
    reply = Reply.stall(after_chunks=2, keepalive=0.02)
    error = await _interrupted(server, reply, timeouts=Timeouts(total=0.3))
    assert isinstance(error, llmfast.DeadlineExceeded)
    assert isinstance(error, TimeoutError)


@pytest.mark.parametrize("provider", ["openai", "anthropic", "ollama", "gemini"])
async def test_reset_is_a_read_error(server: MockServer, provider: str) -> None:
    # the events before "one ": OpenAI's role chunk; Anthropic's message_start, block, ping
    after = {"openai": 2, "anthropic": 4, "ollama": 1, "gemini": 1}[provider]
    error = await _interrupted(server, Reply.reset(after_chunks=after), provider=provider)
    assert isinstance(error, llmfast.ReadError)
    assert isinstance(error, llmfast.TransportError)
    assert not isinstance(error, TimeoutError)


async def test_error_event_keeps_its_payload(server: MockServer) -> None:
    error = await _interrupted(server, Reply.stream_error(OVERLOADED, after_chunks=2), retry=True)
    assert isinstance(error, llmfast.StreamEventError)
    assert error.error == OVERLOADED  # the cause's attributes, copied
    cause = error.__cause__
    assert isinstance(cause, llmfast.StreamEventError)
    assert error.status == cause.status
    assert "Overloaded" in str(error)


async def test_anthropic_error_event_keeps_its_status(server: MockServer) -> None:
    reply = Reply.stream_error(OVERLOADED, after_chunks=4)
    error = await _interrupted(server, reply, provider="anthropic")
    assert isinstance(error, llmfast.StreamEventError)
    assert error.status == 529
    assert error.error["type"] == "overloaded_error"


async def test_malformed_event_is_a_decode_error(server: MockServer) -> None:
    error = await _interrupted(server, Reply.malformed(after_chunks=2))
    assert isinstance(error, llmfast.DecodeError)


@pytest.mark.parametrize(
    "reply",
    [Reply.truncated(after_chunks=2), Reply.end_unfinished(after_chunks=2)],
    ids=["no-done", "done-unfinished"],
)
async def test_truncation_is_a_truncated_error(server: MockServer, reply: Reply) -> None:
    error = await _interrupted(server, reply, retry=True)
    assert isinstance(error, llmfast.StreamTruncatedError)


async def test_pickles_with_partial_and_cause_attributes(server: MockServer) -> None:
    error = await _interrupted(server, Reply.stream_error(OVERLOADED, after_chunks=2))
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert isinstance(copy, llmfast.StreamEventError)
    assert copy.error == OVERLOADED
    assert copy.partial == error.partial
    assert copy.chunks == error.chunks
    assert str(copy) == str(error)
    assert repr(copy).startswith('StreamInterruptedError[StreamEventError]("the stream failed')


def test_classes_are_made_once_per_cause_type() -> None:
    timeout = llmfast.IdleTimeout("idle")
    first = StreamInterruptedError.from_cause(timeout, "a")
    second = StreamInterruptedError.from_cause(llmfast.IdleTimeout("again"), "b")
    assert type(first) is type(second)
    assert type(first).__module__ == "llmfast.errors"
    assert issubclass(type(first), StreamInterruptedError)
    assert issubclass(type(first), llmfast.IdleTimeout)
    assert first.__cause__ is timeout
    # already interrupted: returned as it is, not wrapped twice
    assert StreamInterruptedError.from_cause(first, "c") is first


def test_status_error_cause_is_copied_not_rebuilt() -> None:
    cause = llmfast.OverloadedError(529, "busy", request_id="req_9", headers={"a": "b"})
    error = StreamInterruptedError.from_cause(cause, "the stream failed after 3 chunks: busy")
    assert isinstance(error, llmfast.OverloadedError)
    assert isinstance(error, llmfast.ServerError)
    assert (error.status, error.message, error.request_id) == (529, "busy", "req_9")
    assert error.headers == {"a": "b"}
    assert str(error) == "the stream failed after 3 chunks: busy"
    assert error.partial is None
    assert error.chunks == []
    assert error.partial_text == ""


def test_retry_policy_never_retries_an_interrupted_stream() -> None:
    policy = RetryPolicy()
    cause = llmfast.IdleTimeout("idle")
    assert policy.is_retryable(cause)
    assert not policy.is_retryable(StreamInterruptedError.from_cause(cause, "after 2 chunks"))
