"""Every fault the test server can inject × streaming or not × with or without retry.

Each case asserts the exact outcome — recovered, or the specific typed error — and
that no connection is still held by the pool afterwards (the conftest guard also
fails the case if a task is left running).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import llmfast
from llmfast import Client, Timeouts
from llmfast.layers import Retry
from llmfast.testing import MockServer, Reply
from tests.fakeclock import FakeClock

OVERLOADED = {"message": "Overloaded", "type": "overloaded_error"}
RECOVERED = "recovered"
DELIVERED = "delivered"  # returned as it came, without a retry


@dataclass(frozen=True)
class Case:
    name: str
    reply: Reply
    # expected outcome: [stream][retry] -> RECOVERED, an error type, or
    # (StreamInterruptedError, cause type) for a stream that broke after its first chunk
    plain: type[Exception] | str
    plain_retry: type[Exception] | str
    stream: type[Exception] | tuple[type[Exception], type[Exception]]
    stream_retry: type[Exception] | tuple[type[Exception], type[Exception]] | str
    partial: str = "one "  # the partial text of an interrupted stream


Interrupted = llmfast.StreamInterruptedError

CASES = [
    Case(
        "429",
        Reply.error(429, retry_after=0),
        llmfast.RateLimitError,
        RECOVERED,
        llmfast.RateLimitError,
        RECOVERED,
    ),
    Case("500", Reply.error(500), llmfast.ServerError, RECOVERED, llmfast.ServerError, RECOVERED),
    Case("503", Reply.error(503), llmfast.ServerError, RECOVERED, llmfast.ServerError, RECOVERED),
    Case(
        "529",
        Reply.error(529),
        llmfast.OverloadedError,
        RECOVERED,
        llmfast.OverloadedError,
        RECOVERED,
    ),
    Case(
        "400",
        Reply.error(400),
        llmfast.BadRequestError,
        llmfast.BadRequestError,
        llmfast.BadRequestError,
        llmfast.BadRequestError,
    ),
    Case(
        "401",
        Reply.error(401),
        llmfast.AuthenticationError,
        llmfast.AuthenticationError,
        llmfast.AuthenticationError,
        llmfast.AuthenticationError,
    ),
    Case(
        "404",
        Reply.error(404),
        llmfast.NotFoundError,
        llmfast.NotFoundError,
        llmfast.NotFoundError,
        llmfast.NotFoundError,
    ),
    Case("reset-before", Reply.reset(), llmfast.ReadError, RECOVERED, llmfast.ReadError, RECOVERED),
    Case(
        "reset-mid",
        Reply.reset(after_chunks=2),
        llmfast.ReadError,
        RECOVERED,
        (Interrupted, llmfast.ReadError),
        (Interrupted, llmfast.ReadError),
    ),
    Case(
        "stall-before",
        Reply.stall(),
        llmfast.ReadTimeout,
        RECOVERED,
        llmfast.ReadTimeout,
        RECOVERED,
    ),
    Case(
        "stall-mid",
        Reply.stall(after_chunks=2),
        llmfast.ReadTimeout,
        RECOVERED,
        (Interrupted, llmfast.ReadTimeout),
        (Interrupted, llmfast.ReadTimeout),
    ),
    Case(
        "malformed-first",
        Reply.malformed(),
        llmfast.DecodeError,
        llmfast.DecodeError,
        llmfast.DecodeError,
        llmfast.DecodeError,
    ),
    Case(
        "malformed-mid",
        Reply.malformed(after_chunks=2),
        llmfast.DecodeError,
        llmfast.DecodeError,
        (Interrupted, llmfast.DecodeError),
        (Interrupted, llmfast.DecodeError),
    ),
    Case(
        "truncated-first",
        Reply.truncated(after_chunks=0),
        llmfast.DecodeError,
        llmfast.DecodeError,
        llmfast.StreamTruncatedError,
        RECOVERED,
    ),
    # llama.cpp interrupting a stream: its role chunk then [DONE]. A whole answer
    # without a finish reason is delivered as it is (and never cached).
    Case(
        "unfinished-first",
        Reply.end_unfinished(),
        DELIVERED,
        DELIVERED,
        (Interrupted, llmfast.StreamTruncatedError),
        RECOVERED,  # the role chunk carried nothing: held back, so still retryable
        partial="",
    ),
    Case(
        "unfinished-mid",
        Reply.end_unfinished(after_chunks=2),
        DELIVERED,
        DELIVERED,
        (Interrupted, llmfast.StreamTruncatedError),
        (Interrupted, llmfast.StreamTruncatedError),
    ),
    Case(
        "truncated-mid",
        Reply.truncated(after_chunks=2),
        llmfast.DecodeError,
        llmfast.DecodeError,
        (Interrupted, llmfast.StreamTruncatedError),
        (Interrupted, llmfast.StreamTruncatedError),
    ),
    # Not streaming, the server answers an HTTP 500 carrying the overloaded error.
    Case(
        "overloaded-event-first",
        Reply.stream_error(OVERLOADED, after_chunks=0),
        llmfast.OverloadedError,
        RECOVERED,
        llmfast.StreamEventError,
        RECOVERED,
    ),
    Case(
        "error-event-mid",
        Reply.stream_error(OVERLOADED, after_chunks=2),
        llmfast.OverloadedError,
        RECOVERED,
        (Interrupted, llmfast.StreamEventError),
        (Interrupted, llmfast.StreamEventError),
    ),
]


async def _call(client: Client, stream: bool) -> str | None:
    if not stream:
        return (await client.chat("one two three")).text
    async with client.stream("one two three") as s:
        return (await s.collect()).text


@pytest.mark.parametrize("retry", [False, True], ids=["no-retry", "retry"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_fault(case: Case, stream: bool, retry: bool) -> None:
    expected = {
        (False, False): case.plain,
        (False, True): case.plain_retry,
        (True, False): case.stream,
        (True, True): case.stream_retry,
    }[(stream, retry)]
    clock = FakeClock()
    layers = [Retry(sleep=clock.sleep, clock=clock)] if retry else []
    async with MockServer() as server:
        server.enqueue(case.reply)
        async with Client(
            base_url=server.url, model="m", layers=layers, timeouts=Timeouts(read=0.2)
        ) as client:
            if expected == RECOVERED:
                assert await _call(client, stream) == "one two three"
                assert server.request_count == 2
            elif expected == DELIVERED:
                assert await _call(client, stream) == "one two three"
                assert server.request_count == 1
            elif isinstance(expected, tuple):
                outer, cause = expected
                with pytest.raises(outer) as caught:
                    await _call(client, stream)
                assert type(caught.value.__cause__) is cause
                assert isinstance(caught.value, Interrupted)
                assert isinstance(caught.value, cause)  # it keeps its cause's type
                assert caught.value.partial_text == case.partial
                assert server.request_count == 1
            else:
                assert isinstance(expected, type)
                with pytest.raises(expected) as raised:
                    await _call(client, stream)
                assert type(raised.value) is expected
            assert client._pool.connections_in_use() == 0
