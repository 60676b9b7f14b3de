"""How every backend takes a response in (issue #11, items 2, 3, 5 and 6's body limit):
what is not the API's answer, error bodies sent with 200, hostile bodies, gzip bombs.

Real HTTP to `MockServer`; each case runs on all four backends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

import llmfast
from llmfast import Client, PoolConfig
from llmfast.errors import error_for_status
from llmfast.layers import Retry
from llmfast.testing import MockServer, Reply
from tests.fakeclock import FakeClock

PROVIDERS = ["openai", "anthropic", "ollama", "gemini"]
EMBEDDERS = ["openai", "ollama", "gemini"]
REQUEST_ID = {"openai": "x-request-id", "anthropic": "request-id"}


def client_for(
    server: MockServer, provider: str, *, retry: bool = True, max_body_bytes: int | None = None
) -> Client:
    key = None if provider == "ollama" else "test-key"
    backend = llmfast.backend_for(
        provider, base_url=server.url_for(provider), api_key=key, model="m"
    )
    clock = FakeClock()
    layers: list[llmfast.Layer] = [Retry(sleep=clock.sleep, clock=clock)] if retry else []
    pool = None if max_body_bytes is None else PoolConfig(max_body_bytes=max_body_bytes)
    return Client(backend, layers=layers, pool=pool)


async def streamed(client: Client, prompt: str = "hi") -> llmfast.ChatCompletion:
    async with client.stream(prompt) as stream:
        return await stream.collect()


# -- 2. a stream request answered with something other than its stream ---------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("stream", [True, False])
async def test_an_html_page_with_200_is_a_decode_error_sent_once(
    server: MockServer, provider: str, stream: bool
) -> None:
    server.default = Reply.html()
    async with client_for(server, provider) as client:
        with pytest.raises(llmfast.DecodeError) as info:
            if stream:
                await streamed(client)
            else:
                await client.chat("hi")
    assert not isinstance(info.value, llmfast.StreamInterruptedError)
    message = str(info.value)
    assert "text/html" in message
    assert "Welcome to Airport Wi-Fi" in message
    assert "<" not in message
    assert "window.location" not in message
    assert server.request_count == 1  # not retried


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_json_answer_to_a_stream_request_is_a_one_chunk_stream(
    server: MockServer, provider: str
) -> None:
    server.enqueue(
        Reply.unstreamed("The whole answer at once."), Reply.text("The whole answer at once.")
    )
    async with client_for(server, provider) as client:
        async with client.stream("hi") as stream:
            chunks = [chunk async for chunk in stream]
            result = stream.completion
        plain = await client.chat("hi")
    assert len(chunks) == 1
    assert chunks[0].text == "The whole answer at once."
    assert result.text == plain.text == "The whole answer at once."
    assert result.choices[0].finish_reason == plain.choices[0].finish_reason == "stop"
    assert result.usage == plain.usage
    assert server.request_count == 2


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    "content_type", ["", "application/octet-stream", "text/plain", "application/json"]
)
async def test_a_stream_with_a_missing_or_odd_content_type_is_sniffed(
    server: MockServer, provider: str, content_type: str
) -> None:
    good = await _recorded_stream(server, provider)
    server.enqueue(Reply.raw(good, content_type=content_type, write_size=7))
    async with client_for(server, provider) as client:
        result = await streamed(client, "sniff me")
    assert result.text == "sniff me"
    assert result.choices[0].finish_reason == "stop"
    assert client._pool.connections_in_use() == 0


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_plain_text_that_is_not_a_stream_is_a_decode_error(
    server: MockServer, provider: str
) -> None:
    server.enqueue(
        Reply.raw(b"Service temporarily down for maintenance", content_type="text/plain")
    )
    async with client_for(server, provider) as client:
        with pytest.raises(llmfast.DecodeError, match=r"text/plain.*maintenance"):
            await streamed(client)
    assert server.request_count == 1


async def _recorded_stream(server: MockServer, provider: str) -> bytes:
    """The bytes of a good stream in `provider`'s format, fetched raw from the server."""
    import aiohttp

    paths = {
        "openai": ("/v1/chat/completions", {"model": "m", "stream": True}),
        "anthropic": ("/v1/messages", {"model": "m", "stream": True, "max_tokens": 9}),
        "ollama": ("/api/chat", {"model": "m", "stream": True}),
        "gemini": ("/v1beta/models/m:streamGenerateContent?alt=sse", {}),
    }
    path, body = paths[provider]
    if provider == "gemini":
        body["contents"] = [{"role": "user", "parts": [{"text": "sniff me"}]}]
    else:
        body["messages"] = [{"role": "user", "content": "sniff me"}]
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.root_url + path, json=body) as resp,
    ):
        data = await resp.read()
    server.reset()
    return data


# -- 3. error bodies sent with 200 -------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(
    ("status", "message", "cls"),
    [
        (529, "Overloaded", llmfast.OverloadedError),
        (429, "Rate limit reached", llmfast.RateLimitError),
        (401, "Invalid API key", llmfast.AuthenticationError),
    ],
)
async def test_an_error_body_with_200_keeps_its_class_status_and_headers(
    server: MockServer,
    provider: str,
    stream: bool,
    status: int,
    message: str,
    cls: type[llmfast.APIStatusError],
) -> None:
    code = {529: "overloaded", 429: "rate_limit_exceeded", 401: "invalid_api_key"}[status]
    reply = Reply.error(
        status, message=message, code=code, http_status=200, headers={"x-trace": "t1"}
    )
    server.enqueue(reply, reply, Reply.text("ok"))
    async with client_for(server, provider) as client:
        retried = cls is not llmfast.AuthenticationError
        if retried:  # retried like the status it names, then answered
            result = await (streamed(client) if stream else client.chat("hi"))
            assert result.text == "ok"
            assert server.request_count == 3
            return
        with pytest.raises(cls) as info:
            await (streamed(client) if stream else client.chat("hi"))
    error = info.value
    assert type(error) is cls
    assert error.status == 200
    assert error.effective_status == status
    assert error.headers["x-trace"] == "t1"
    header = REQUEST_ID.get(provider)
    if header is not None:
        assert error.request_id == error.headers[header]
    assert message in str(error)
    assert server.request_count == 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_overloaded_body_with_200_is_an_overloaded_error(
    server: MockServer, provider: str
) -> None:
    server.default = Reply.error(529, message="Overloaded", code="overloaded", http_status=200)
    async with client_for(server, provider, retry=False) as client:
        with pytest.raises(llmfast.OverloadedError) as info:
            await client.chat("hi")
    assert info.value.status == 200
    assert info.value.effective_status == 529


@pytest.mark.parametrize(
    ("body", "cls", "effective"),
    [
        ({"error": {"type": "server_error", "code": "overloaded"}}, llmfast.OverloadedError, 529),
        (
            {"error": {"type": "requests", "code": "rate_limit_exceeded"}},
            llmfast.RateLimitError,
            429,
        ),
        (
            {
                "error": {
                    "type": "invalid_request_error",
                    "code": "context_length_exceeded",
                    "message": "too long",
                }
            },
            llmfast.ContextLengthError,
            400,
        ),
        (
            {"error": {"type": "invalid_request_error", "code": "model_not_found"}},
            llmfast.NotFoundError,
            404,
        ),
        (
            {"error": {"code": "model_not_found", "message": "no such model"}},
            llmfast.NotFoundError,
            404,
        ),
        (
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            llmfast.OverloadedError,
            529,
        ),
        (
            {"type": "error", "error": {"type": "authentication_error"}},
            llmfast.AuthenticationError,
            401,
        ),
        (
            {"type": "error", "error": {"type": "permission_error"}},
            llmfast.PermissionDeniedError,
            403,
        ),
        (
            {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}},
            llmfast.RateLimitError,
            429,
        ),
        ({"error": {"message": "x", "status": "UNAVAILABLE"}}, llmfast.ServerError, 503),
        ({"error": {"message": "x", "status": "NOT_FOUND"}}, llmfast.NotFoundError, 404),
        ({"error": 'model "m" not found, try pulling it first'}, llmfast.NotFoundError, 404),
        ({"error": "server overloaded, please retry"}, llmfast.OverloadedError, 529),
        ({"error": "something odd"}, llmfast.ServerError, 500),
        ({"error": {"deep": [[[[]]]]}}, llmfast.ServerError, 500),
    ],
)
def test_error_bodies_with_200_map_by_type_and_code(
    body: dict[str, Any], cls: type[llmfast.APIStatusError], effective: int
) -> None:
    error = error_for_status(200, body, {"x-request-id": "r1"})
    assert type(error) is cls
    assert (error.status, error.effective_status, error.request_id) == (200, effective, "r1")


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_502_html_page_is_shown_as_its_text(server: MockServer, provider: str) -> None:
    server.default = Reply.html(502)
    async with client_for(server, provider, retry=False) as client:
        with pytest.raises(llmfast.ServerError) as info:
            await client.chat("hi")
    assert info.value.status == 502
    assert info.value.message == "502 Bad Gateway 502 Bad Gateway nginx/1.24.0"


def test_a_huge_text_error_body_is_bounded() -> None:
    error = error_for_status(500, "<p>" + "x " * 100_000 + "</p>", {})
    assert len(error.message) <= 500
    assert "<" not in error.message


# -- 5. hostile bodies end in DecodeError ---------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_deep_nesting_is_a_decode_error_everywhere(server: MockServer, provider: str) -> None:
    server.enqueue(Reply.nested(), Reply.nested(), Reply.nested(status=500))
    async with client_for(server, provider, retry=False) as client:
        with pytest.raises(llmfast.DecodeError):
            await client.chat("hi")
        with pytest.raises(llmfast.DecodeError):
            await streamed(client)
        with pytest.raises(llmfast.ServerError) as info:  # an error body: still the status
            await client.chat("hi")
    assert info.value.status == 500


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_deep_nesting_after_chunks_interrupts_with_the_partial(
    server: MockServer, provider: str
) -> None:
    server.enqueue(Reply.nested(after_chunks=4))
    async with client_for(server, provider, retry=False) as client:
        with pytest.raises(llmfast.StreamInterruptedError) as info:
            await streamed(client, "one two three four five six")
    assert isinstance(info.value.__cause__, llmfast.DecodeError)
    assert info.value.partial_text
    assert "one two three four five six".startswith(info.value.partial_text)


@pytest.mark.parametrize("provider", EMBEDDERS)
async def test_deep_nesting_in_embeddings_is_a_decode_error(
    server: MockServer, provider: str
) -> None:
    server.enqueue(Reply.nested())
    async with client_for(server, provider, retry=False) as client:
        with pytest.raises(llmfast.DecodeError):
            await client.embed("hi")


@pytest.mark.parametrize("embedding", ["abc", "!!!!", "AAA=", "AAA"])
async def test_bad_base64_embeddings_are_a_decode_error(server: MockServer, embedding: str) -> None:
    body = b'{"object": "list", "data": [{"embedding": "%s", "index": 0}], "model": "m"}'
    server.enqueue(Reply.raw(body % embedding.encode(), content_type="application/json"))
    async with client_for(server, "openai", retry=False) as client:
        with pytest.raises(llmfast.DecodeError, match="base64"):
            await client.embed("hi", encoding_format="base64")


# -- 6. bounded memory while reading ----------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("stream", [True, False])
async def test_a_gzip_bomb_is_response_too_large(
    server: MockServer, provider: str, stream: bool
) -> None:
    server.default = Reply.gzip_bomb(64 << 20)
    async with client_for(server, provider, max_body_bytes=1 << 20) as client:
        with pytest.raises(llmfast.ResponseTooLargeError) as info:
            await (streamed(client) if stream else client.chat("hi"))
        assert client._pool.connections_in_use() == 0
    assert info.value.limit == 1 << 20
    assert server.request_count == 1  # not retried: the answer would be as large again


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_gzip_bomb_as_an_error_body_keeps_the_status(
    server: MockServer, provider: str
) -> None:
    server.default = Reply.gzip_bomb(64 << 20, status=503)
    async with client_for(server, provider, retry=False, max_body_bytes=1 << 20) as client:
        with pytest.raises(llmfast.ServerError) as info:
            await client.chat("hi")
    assert info.value.status == 503


def test_a_one_gib_gzip_bomb_stays_within_bounded_memory() -> None:
    """Peak RSS (VmHWM) growth of a fresh process reading a 1 GiB bomb, default limit."""
    script = textwrap.dedent(
        """
        import asyncio, llmfast
        from llmfast.testing import MockServer, Reply

        def peak():
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024

        async def main():
            async with MockServer() as server:
                async with llmfast.Client(base_url=server.url, model="m") as client:
                    await client.chat("warm up")
                    Reply.gzip_bomb()  # built (and cached) before the baseline
                    server.enqueue(Reply.gzip_bomb())
                    before = peak()
                    try:
                        await client.chat("hi")
                    except llmfast.ResponseTooLargeError:
                        print(peak() - before)
                    else:
                        print("no error")

        asyncio.run(main())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        check=True,
    ).stdout.strip()
    assert out != "no error"
    growth = int(out)
    assert growth < 100 * 2**20, f"peak RSS grew {growth / 2**20:.0f} MiB"
