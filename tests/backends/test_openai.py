"""The OpenAI-compatible backend's error mapping, over real HTTP with injected faults."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest

import llmfast
from llmfast import Client, Timeouts
from llmfast.backends.openai import encode_request
from llmfast.testing import MockServer, Reply

SLACK = 0.15  # the scheduler's slack allowed past a deadline on this shared machine


@pytest.fixture
async def client(server: MockServer) -> AsyncIterator[Client]:
    # The backend alone (no default retries): each test sees what one response maps to.
    async with Client(base_url=server.url, api_key="k", model="m", layers=[]) as client:
        yield client


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, llmfast.BadRequestError),
        (401, llmfast.AuthenticationError),
        (403, llmfast.PermissionDeniedError),
        (404, llmfast.NotFoundError),
        (409, llmfast.ConflictError),
        (422, llmfast.UnprocessableEntityError),
        (429, llmfast.RateLimitError),
        (500, llmfast.ServerError),
        (502, llmfast.ServerError),
        (503, llmfast.ServerError),
        (529, llmfast.OverloadedError),
    ],
)
async def test_status_errors_map_to_the_tree(
    server: MockServer, client: Client, status: int, error: type[llmfast.APIStatusError]
) -> None:
    server.enqueue(Reply.error(status, message=f"failure {status}", type="some_error", code="c1"))
    with pytest.raises(error) as caught:
        await client.chat("hi")
    exc = caught.value
    assert type(exc) is error
    assert exc.status == status
    assert exc.message == f"failure {status}"
    assert exc.body["error"]["code"] == "c1"
    assert exc.request_id is not None
    assert exc.request_id.startswith("req_")
    assert str(status) in str(exc)


async def test_retry_after_seconds_and_ms(server: MockServer, client: Client) -> None:
    server.enqueue(
        Reply.error(429, retry_after=3),
        Reply.error(429, retry_after_ms=250),
        Reply.error(503, retry_after="Wed, 21 Oct 2015 07:28:00 GMT"),
    )
    with pytest.raises(llmfast.RateLimitError) as first:
        await client.chat("hi")
    assert first.value.retry_after == 3.0
    with pytest.raises(llmfast.RateLimitError) as second:
        await client.chat("hi")
    assert second.value.retry_after == 0.25
    with pytest.raises(llmfast.ServerError) as third:
        await client.chat("hi")
    assert third.value.retry_after == 0.0  # a date in the past: retry now


async def test_overloaded_body_on_a_500(server: MockServer, client: Client) -> None:
    server.enqueue(Reply.error(500, message="busy", type="overloaded_error"))
    with pytest.raises(llmfast.OverloadedError):
        await client.chat("hi")


async def test_status_error_in_a_stream_is_raised_on_start(
    server: MockServer, client: Client
) -> None:
    server.enqueue(Reply.error(429, retry_after=1))
    with pytest.raises(llmfast.RateLimitError):
        async with client.stream("hi"):
            pass


async def test_unknown_endpoint_is_not_found(server: MockServer) -> None:
    async with Client(base_url=server.url + "/nope", model="m") as client:
        with pytest.raises(llmfast.NotFoundError):
            await client.chat("hi")


async def test_connection_refused_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    async with Client(base_url=url, model="m", layers=[]) as client:  # one attempt
        with pytest.raises(llmfast.ConnectError):
            await client.chat("hi")


async def test_reset_before_the_response_is_a_read_error(
    server: MockServer, client: Client
) -> None:
    server.enqueue(Reply.reset())
    with pytest.raises(llmfast.ReadError):
        await client.chat("hi")
    assert (await client.chat("next")).text == "next"  # the pool recovered


async def test_reset_mid_body_is_a_read_error(server: MockServer, client: Client) -> None:
    server.enqueue(Reply.reset(after_chunks=1))
    with pytest.raises(llmfast.ReadError):
        await client.chat("hi")


async def test_reset_mid_stream_keeps_what_arrived(server: MockServer, client: Client) -> None:
    server.enqueue(Reply.reset(after_chunks=3))
    with pytest.raises(llmfast.StreamInterruptedError) as caught:
        async with client.stream("a b c d e f") as stream:
            async for _ in stream:
                pass
    exc = caught.value
    assert isinstance(exc.__cause__, llmfast.ReadError)
    assert len(exc.chunks) == 3  # role chunk + two content chunks
    assert exc.partial_text == "a b "
    assert exc.partial is not None
    assert exc.partial.text == "a b "


async def test_read_timeout_on_a_stalled_server(server: MockServer) -> None:
    server.enqueue(Reply.stall())
    timeouts = Timeouts(read=0.2)
    async with Client(base_url=server.url, model="m", timeouts=timeouts, layers=[]) as client:
        with pytest.raises(llmfast.ReadTimeout) as caught:
            await client.chat("hi")
    assert isinstance(caught.value, TimeoutError)


async def test_call_deadline_on_a_stalled_server(server: MockServer, client: Client) -> None:
    server.enqueue(Reply.stall())
    started = time.monotonic()
    with pytest.raises(llmfast.DeadlineExceeded) as caught:
        await client.chat("hi", timeout=0.2)
    assert isinstance(caught.value, TimeoutError)
    assert 0.2 <= time.monotonic() - started < 0.2 + SLACK


async def test_stall_mid_stream_hits_the_deadline_with_partial(
    server: MockServer, client: Client
) -> None:
    server.enqueue(Reply.stall(after_chunks=2))
    with pytest.raises(llmfast.StreamInterruptedError) as caught:
        async with client.stream("x y z", timeout=0.2) as stream:
            async for _ in stream:
                pass
    assert isinstance(caught.value.__cause__, llmfast.DeadlineExceeded)
    assert caught.value.partial_text == "x "


async def test_idle_timeout_between_events(server: MockServer) -> None:
    server.enqueue(Reply.stall(after_chunks=2))
    timeouts = Timeouts(idle=0.2)
    async with Client(base_url=server.url, model="m", timeouts=timeouts) as client:
        with pytest.raises(llmfast.StreamInterruptedError) as caught:
            async with client.stream("x y z") as stream:
                await stream.collect()
    assert isinstance(caught.value.__cause__, llmfast.IdleTimeout)
    assert isinstance(caught.value.__cause__, TimeoutError)


@pytest.mark.parametrize("after_chunks", [0, 1])
async def test_first_chunk_timeout(server: MockServer, after_chunks: int) -> None:
    # 0: no headers at all; 1: headers and one event, then silence (the event is the
    # first chunk, so then only the idle timeout could apply).
    server.enqueue(Reply.stall(after_chunks=after_chunks))
    timeouts = Timeouts(first_chunk=0.2, idle=0.4)
    async with Client(base_url=server.url, model="m", timeouts=timeouts, layers=[]) as client:
        with pytest.raises(llmfast.LLMFastError) as caught:
            async with client.stream("x y z") as stream:
                await stream.collect()
    error = caught.value if after_chunks == 0 else caught.value.__cause__
    expected = llmfast.FirstChunkTimeout if after_chunks == 0 else llmfast.IdleTimeout
    assert type(error) is expected


async def test_malformed_json_body(server: MockServer, client: Client) -> None:
    server.enqueue(Reply.malformed())
    with pytest.raises(llmfast.DecodeError, match="malformed chat completion"):
        await client.chat("hi")


async def test_malformed_event_in_a_stream(server: MockServer, client: Client) -> None:
    server.enqueue(Reply.malformed(after_chunks=0))
    with pytest.raises(llmfast.DecodeError, match="malformed stream chunk"):
        async with client.stream("hi") as stream:
            await stream.collect()


async def test_truncated_stream(server: MockServer, client: Client) -> None:
    server.enqueue(Reply.truncated(after_chunks=2))
    with pytest.raises(llmfast.StreamInterruptedError) as caught:
        async with client.stream("p q r") as stream:
            await stream.collect()
    assert isinstance(caught.value.__cause__, llmfast.StreamTruncatedError)
    assert caught.value.partial_text == "p "


async def test_truncated_stream_before_any_chunk(server: MockServer, client: Client) -> None:
    server.enqueue(Reply.truncated(after_chunks=0))
    with pytest.raises(llmfast.StreamTruncatedError):
        async with client.stream("p q r") as stream:
            await stream.collect()


async def test_truncated_non_stream_body(server: MockServer, client: Client) -> None:
    server.enqueue(Reply.truncated())
    with pytest.raises(llmfast.DecodeError):
        await client.chat("hi")


async def test_error_event_in_a_stream(server: MockServer, client: Client) -> None:
    error = {"message": "The server had an error", "type": "server_error", "code": None}
    server.enqueue(Reply.stream_error(error, after_chunks=0))
    with pytest.raises(llmfast.StreamEventError) as caught:
        async with client.stream("hi") as stream:
            await stream.collect()
    assert caught.value.error["type"] == "server_error"
    assert "The server had an error" in str(caught.value)


async def test_error_event_after_content_keeps_partial(server: MockServer, client: Client) -> None:
    server.enqueue(Reply.stream_error({"message": "overloaded"}, after_chunks=2))
    with pytest.raises(llmfast.StreamInterruptedError) as caught:
        async with client.stream("u v w") as stream:
            await stream.collect()
    assert isinstance(caught.value.__cause__, llmfast.StreamEventError)
    assert caught.value.partial_text == "u "


async def test_cancelling_a_stream_releases_its_connection(
    server: MockServer, client: Client
) -> None:
    server.enqueue(Reply.stall(after_chunks=2))
    received = asyncio.Event()

    async def consume() -> None:
        async with client.stream("a b c") as stream:
            async for _ in stream:
                received.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(received.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client._pool.open_connections() == 0
    assert (await client.chat("still works")).text == "still works"


async def test_closing_a_stream_early_releases_its_connection(
    server: MockServer, client: Client
) -> None:
    async with client.stream("a b c d e f g") as stream:
        async for _ in stream:
            break
    # The connection is back in the pool (if the whole body had arrived) or closed.
    assert client._pool.connections_in_use() == 0
    with pytest.raises(llmfast.StreamConsumedError):
        _ = stream.completion


def test_extra_body_and_stream_options_encoding() -> None:
    body = llmfast.ChatRequest(
        model="m", messages=[], extra_body={"stream_options": {"include_usage": False}}
    )
    assert encode_request(body, stream=True) == (
        b'{"model":"m","messages":[],"stream_options":{"include_usage":false},"stream":true}'
    )
    plain = llmfast.ChatRequest(model="m", messages=[])
    assert encode_request(plain, stream=False) == b'{"model":"m","messages":[]}'
    with pytest.raises(llmfast.ConfigurationError):
        encode_request(
            llmfast.ChatRequest(model="m", messages=[], extra_body={"stream": 1}), stream=False
        )


async def test_warmup_against_a_closed_port_raises_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with Client(base_url=f"http://127.0.0.1:{port}/v1", model="m") as client:
        with pytest.raises(llmfast.ConnectError):
            await client.warmup(2)


async def test_a_backend_used_alone_closes_its_own_pool(server: MockServer) -> None:
    backend = llmfast.OpenAIBackend(server.url, model="m")
    body = llmfast.ChatRequest(model="m", messages=[{"role": "user", "content": "solo"}])
    response = await backend.send(llmfast.Request(body))
    assert (await response.collect()).text == "solo"
    pool = backend.pool
    await backend.aclose()
    assert pool.closed
    assert pool.open_connections() == 0


async def test_an_error_body_with_status_200_raises(server: MockServer, client: Client) -> None:
    body = b'{"error": {"message": "Rate limit exceeded", "code": 429}}'
    server.enqueue(Reply.raw(body, content_type="application/json"))
    with pytest.raises(llmfast.RateLimitError, match="Rate limit exceeded"):
        await client.chat("hi")
    server.enqueue(Reply.raw(b'{"error": "upstream failed"}', content_type="application/json"))
    with pytest.raises(llmfast.ServerError, match="upstream failed"):
        await client.chat("hi")


async def test_a_per_call_timeout_keeps_the_connect_timeout(server: MockServer) -> None:
    timeouts = llmfast.Timeouts(connect=3.0, read=100.0)
    async with Client(base_url=server.url, model="m", timeouts=timeouts) as client:
        per_call = client._pool.call_timeout(0.5)
        assert (per_call.total, per_call.sock_connect, per_call.sock_read) == (0.5, 3.0, 100.0)
        server.enqueue(Reply.text("ok", delay=0.01))
        assert (await client.chat("hi", timeout=5)).text == "ok"


async def test_keep_alive_comments_do_not_hold_a_dead_stream_open(server: MockServer) -> None:
    server.enqueue(Reply.stall(after_chunks=2, keepalive=0.05))
    timeouts = Timeouts(idle=0.3, read=5)
    async with Client(base_url=server.url, model="m", timeouts=timeouts) as client:
        started = time.monotonic()
        with pytest.raises(llmfast.StreamInterruptedError) as caught:
            async with client.stream("x y z") as stream:
                await stream.collect()
        assert 0.3 <= time.monotonic() - started < 0.3 + SLACK + 0.1
        assert client._pool.connections_in_use() == 0
    assert type(caught.value.__cause__) is llmfast.IdleTimeout


async def test_keep_alives_defeat_the_read_timeout_but_not_the_deadline(
    server: MockServer,
) -> None:
    server.enqueue(Reply.stall(after_chunks=2, keepalive=0.05))
    timeouts = Timeouts(idle=None, read=0.2)
    async with Client(base_url=server.url, model="m", timeouts=timeouts) as client:
        with pytest.raises(llmfast.StreamInterruptedError) as caught:
            async with client.stream("x y z", timeout=0.6) as stream:
                await stream.collect()
    assert type(caught.value.__cause__) is llmfast.DeadlineExceeded


async def test_the_backends_headers_and_a_calls_own_reach_the_server(server: MockServer) -> None:
    """The backend's headers go as one prebuilt multidict; a call's own headers are laid
    over them (a name in both: the call's value)."""
    backend = llmfast.OpenAIBackend(
        server.url, api_key="k", model="m", headers={"X-App": "demo", "X-Team": "a"}
    )
    async with Client(backend, layers=[]) as client:
        await client.chat("hi")
        await client.chat("hi", headers={"x-team": "b", "X-Call": "1"})
        await client.chat("hi")
    plain, own, again = (request.headers for request in server.requests)
    for headers in (plain, again):
        assert (headers["x-app"], headers["x-team"]) == ("demo", "a")
        assert "x-call" not in headers
        assert headers["authorization"] == "Bearer k"
        assert headers["content-type"] == "application/json"
    assert (own["x-app"], own["x-team"], own["x-call"]) == ("demo", "b", "1")
    assert own["authorization"] == "Bearer k"
