"""An upstream that streams as a live model does: each event in its own send, a fixed
gap apart.

``python benchmarks/paced_upstream.py REPLIES_DIR PORT GAP``: serves the files nginx
serves (``chat.json`` for ``POST /v1/chat/completions``, ``stream.sse`` for ``POST
/stream/v1/chat/completions``, ``embed.json`` for ``POST /v1/embeddings``), but sends
``stream.sse`` one event per write, ``GAP`` seconds apart (``Content-Length`` framed, so
a read of the gateway holds one event, as it does in front of a real provider). A bare
asyncio protocol, so that its own CPU stays small beside the gateways'. SIGTERM stops it.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

_ROUTES = {
    b"/v1/chat/completions": ("chat.json", b"application/json"),
    b"/stream/v1/chat/completions": ("stream.sse", b"text/event-stream"),
    b"/v1/embeddings": ("embed.json", b"application/json"),
}


class _Upstream(asyncio.Protocol):
    def __init__(self, replies: dict[bytes, tuple[bytes, list[bytes]]], gap: float) -> None:
        self._replies = replies
        self._gap = gap
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._task = asyncio.get_running_loop().create_task(self._answer())

    def connection_lost(self, exc: Exception | None) -> None:
        if self._task is not None:
            self._task.cancel()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self._buffer[:end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self._buffer) < end + 4 + length:
                return
            self._buffer = self._buffer[end + 4 + length :]
            self._queue.put_nowait(head.split(b" ", 2)[1])

    async def _answer(self) -> None:
        transport = self._transport
        assert transport is not None
        while True:
            path = await self._queue.get()
            headers, events = self._replies.get(path, (b"", []))
            if not headers:
                transport.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                continue
            transport.write(headers + events[0])
            for event in events[1:]:
                await asyncio.sleep(self._gap)
                transport.write(event)


def _load(directory: Path) -> dict[bytes, tuple[bytes, list[bytes]]]:
    replies: dict[bytes, tuple[bytes, list[bytes]]] = {}
    for path, (name, content_type) in _ROUTES.items():
        body = (directory / name).read_bytes()
        if name == "stream.sse":
            events = [event + b"\n\n" for event in body.split(b"\n\n") if event.strip()]
        else:
            events = [body]
        headers = b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type
        headers += b"\r\nContent-Length: " + str(len(b"".join(events))).encode() + b"\r\n\r\n"
        replies[path] = (headers, events)
    return replies


async def main(directory: Path, port: int, gap: float) -> None:
    replies = _load(directory)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Upstream(replies, gap), "127.0.0.1", port, backlog=4096
    )
    print(f"paced upstream listening on http://127.0.0.1:{port}/v1", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
