"""A slow client never makes the gateway buffer without bound.

The upstream (a ``llmfast.testing`` server) streams a large answer and reports, through
[`watch_stream`][llmfast.testing.MockServer.watch_stream], when its writer waits for
the socket to drain. The client is a raw socket with a small receive buffer that
reads only while the upstream is paused: every byte in flight between them is then
held by the kernel buffers or by the gateway. If the gateway did not wait for its own
client's socket, it would pull the whole answer in while the client reads nothing,
and what the upstream has sent would run megabytes ahead of what the client got.
"""

from __future__ import annotations

import asyncio
import functools
import json
import socket
from collections.abc import AsyncIterator

import msgspec
import pytest

from llmfast.gateway import Gateway
from llmfast.testing import MockServer, Reply

from .conftest import TEAM_A_KEY, MakeGateway, standard_config


@functools.cache
def _text() -> str:
    """The answer: 24 MB of words (built once, when a test first needs it)."""
    return "".join(f"word{i:03d} " for i in range(1000)) * 3000


_PIECE = 4096  # characters per streamed chunk


def _largest_send_buffer() -> int:
    """The kernel's ceiling for an autotuned TCP send buffer (``tcp_wmem`` max)."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as file:
            return int(file.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 * 2**20


# In flight at most: the gateway's send buffer to its client, which the kernel grows
# up to tcp_wmem (4 MB here), plus 6 MB for every other buffer on the way (measured:
# about 1 MB). A gateway that does not wait for its client holds nearly all of the
# 24 MB answer (measured with one that writes without draining: over 20 MB).
_BOUND = _largest_send_buffer() + 6 * 2**20
_RECEIVE_BUFFER = 64 * 1024


@pytest.fixture
async def gateway(upstream: MockServer, make_gateway: MakeGateway) -> AsyncIterator[Gateway]:
    async with make_gateway(standard_config(upstream)) as gateway:
        yield gateway


async def _open(gateway: Gateway) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = gateway.url.removeprefix("http://").rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)  # no autotuning
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    return await asyncio.open_connection(sock=sock, limit=_RECEIVE_BUFFER)


async def _slow_read(
    gateway: Gateway, upstream: MockServer, path: str, body: dict[str, object]
) -> tuple[bytes, int, int]:
    """The raw answer, the most in flight at any pause of the upstream, and the pauses."""
    flow = upstream.watch_stream(send_buffer=64 * 1024)
    upstream.enqueue(Reply.text(_text(), chunk_size=_PIECE))
    reader, writer = await _open(gateway)
    data = msgspec.json.encode(body)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {TEAM_A_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        "Connection: close\r\n\r\n"
    )
    writer.write(head.encode() + data)
    received: list[bytes] = []
    got = 0
    most = 0
    try:
        while True:
            if await flow.wait_paused(timeout=30):  # False: the upstream wrote it all
                most = max(most, flow.sent - got)
            piece = await asyncio.wait_for(reader.read(_RECEIVE_BUFFER), 30)
            if not piece:
                break
            received.append(piece)
            got += len(piece)
    finally:
        writer.close()
    assert flow.done
    assert flow.written == flow.total
    return b"".join(received), most, flow.pauses


def _body_of(raw: bytes) -> bytes:
    """The body of a chunked HTTP/1.1 response."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    assert b"transfer-encoding: chunked" in head.lower()
    out = bytearray()
    view = memoryview(rest)
    at = 0
    while True:
        end = rest.index(b"\r\n", at)
        size = int(rest[at:end].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += view[end + 2 : end + 2 + size]
        at = end + 2 + size + 2


def _events(body: bytes) -> list[dict[str, object]]:
    return [
        json.loads(line[6:])
        for line in body.split(b"\n")
        if line.startswith(b"data: ") and line != b"data: [DONE]"
    ]


async def test_an_openai_stream_to_a_slow_client_holds_the_upstream_back(
    gateway: Gateway, upstream: MockServer
) -> None:
    body = {"model": "fast", "messages": [{"role": "user", "content": "go"}], "stream": True}
    raw, most, pauses = await _slow_read(gateway, upstream, "/v1/chat/completions", body)
    assert pauses > 10  # the upstream was held back, again and again
    assert most < _BOUND
    events = _events(_body_of(raw))
    text = "".join(
        e["choices"][0]["delta"].get("content") or ""  # type: ignore[index]
        for e in events
        if e["choices"]
    )
    assert text == _text()
    assert raw.rstrip(b"\r\n0").endswith(b"data: [DONE]")


async def test_an_anthropic_stream_to_a_slow_client_holds_the_upstream_back(
    gateway: Gateway, upstream: MockServer
) -> None:
    body = {
        "model": "fast",
        "max_tokens": 4_000_000,
        "messages": [{"role": "user", "content": "go"}],
        "stream": True,
    }
    raw, most, pauses = await _slow_read(gateway, upstream, "/v1/messages", body)
    assert pauses > 10
    assert most < _BOUND
    events = _events(_body_of(raw))
    text = "".join(
        e["delta"]["text"]  # type: ignore[index]
        for e in events
        if e["type"] == "content_block_delta"
    )
    assert text == _text()
    assert events[-1]["type"] == "message_stop"
