"""Watching how a streamed reply of [MockServer][llmfast.testing.MockServer] flows out:
how many bytes it has written, whether its writer is waiting for the client to read
(backpressure), and whether the client hung up.

>>> flow = server.watch_stream()     # doctest: +SKIP
>>> ...                              # a client starts a stream and stops reading
>>> await flow.wait_paused()         # True: the writer waits for the socket to drain
>>> flow.sent                        # what left the server's buffer so far

[`watch_stream`][llmfast.testing.MockServer.watch_stream] arms the next streamed chat
reply (text, echo or tool calls) of the server; that reply is then written
``piece_size`` bytes at a time, each write waiting while the socket is full, so
[`sent`][llmfast.testing.flow.StreamFlow.sent] tells how far the client (or the proxy
in front of it) has pulled the stream. ``hold=True`` keeps the stream at its headers
until [`release`][llmfast.testing.flow.StreamFlow.release]: a call in flight that a
test can cancel, join or let go on at the moment it chooses. A flow's waits run on
the server's own event loop (a server started in the test, not ``in_thread()``);
[`reset`][llmfast.testing.MockServer.reset] forgets the flows not yet used.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import deque

from aiohttp import web

__all__ = ["FlowWatching", "StreamFlow"]


class StreamFlow:
    """The progress of one watched streamed reply (see the module)."""

    def __init__(self, *, piece_size: int, hold: bool, send_buffer: int | None) -> None:
        if piece_size < 1:
            raise ValueError("piece_size must be >= 1")
        self.piece_size = piece_size
        self.send_buffer = send_buffer
        self.total = 0
        """The reply's size in bytes (known once it started)."""
        self.written = 0
        """Bytes handed to the connection so far."""
        self.pauses = 0
        """How many times the writer waited for the client to read."""
        self._transport: asyncio.BaseTransport | None = None
        self._writing = False
        self._paused = False
        self._changed = asyncio.Event()
        self._started = asyncio.Event()
        self._released = asyncio.Event()
        if not hold:
            self._released.set()
        self._done = asyncio.Event()
        self._disconnected = asyncio.Event()

    # -- what a test reads -----------------------------------------------------------

    @property
    def sent(self) -> int:
        """Bytes that left the server's own buffer (written minus what the transport
        still holds)."""
        transport = self._transport
        held = 0
        if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            held = transport.get_write_buffer_size()
        return max(0, self.written - held)

    @property
    def paused(self) -> bool:
        """True while the writer waits for the socket to drain."""
        return self._paused

    @property
    def done(self) -> bool:
        """True once the whole reply was written."""
        return self._done.is_set()

    @property
    def disconnected(self) -> bool:
        """True once the client hung up before the end."""
        return self._disconnected.is_set()

    def release(self) -> None:
        """Let a held stream go on past its headers."""
        self._released.set()

    async def wait_started(self, timeout: float = 5.0) -> None:
        """Return once the watched reply has sent its headers."""
        await asyncio.wait_for(self._started.wait(), timeout)

    async def wait_paused(self, timeout: float = 5.0) -> bool:
        """Wait until the writer is paused (True) or the reply is written (False);
        raise `TimeoutError` after ``timeout`` seconds."""

        async def settle() -> bool:
            while not self._paused and not self._done.is_set():
                if self._disconnected.is_set():
                    raise ConnectionError("the client hung up")
                self._changed.clear()
                await self._changed.wait()
            return self._paused

        return await asyncio.wait_for(settle(), timeout)

    async def wait_done(self, timeout: float = 5.0) -> None:
        """Return once the whole reply was written."""
        await asyncio.wait_for(self._done.wait(), timeout)

    async def wait_disconnected(self, timeout: float = 5.0) -> None:
        """Return once the client hung up before the end of the reply."""
        await asyncio.wait_for(self._disconnected.wait(), timeout)

    # -- the server's side -----------------------------------------------------------

    async def write(
        self, request: web.BaseRequest, response: web.StreamResponse, data: bytes
    ) -> None:
        """Write ``data`` as the watched reply (the headers are out)."""
        self.total = len(data)
        self._transport = transport = request.transport
        protocol = request.protocol
        if self.send_buffer is not None and transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)
        self._started.set()
        loop = asyncio.get_running_loop()
        try:
            await self._released.wait()
            view = memoryview(data)
            size = self.piece_size
            for start in range(0, len(data), size):
                piece = view[start : start + size]
                self._writing = True
                # Runs on the next turn of the loop: by then this write is done or waiting.
                loop.call_soon(self._check, protocol)
                await response.write(piece)
                self._writing = False
                if self._paused:
                    self._paused = False
                self.written += len(piece)
                self._wake()
        except (ConnectionError, asyncio.CancelledError):
            self._disconnected.set()
            self._wake()
            raise
        finally:
            self._writing = self._paused = False
        self._done.set()
        self._wake()

    def _check(self, protocol: object) -> None:
        if self._writing and not self._paused and getattr(protocol, "writing_paused", False):
            self._paused = True
            self.pauses += 1
            self._wake()

    def _wake(self) -> None:
        self._changed.set()


class FlowWatching:
    """The watching half of [MockServer][llmfast.testing.MockServer] (a base class)."""

    _watches: deque[StreamFlow] | None = None

    def watch_stream(
        self, *, piece_size: int = 65536, hold: bool = False, send_buffer: int | None = None
    ) -> StreamFlow:
        """Watch the next streamed chat reply (several calls: the next ones, in order).

        Args:
            piece_size: bytes per write.
            hold: keep the stream at its headers until ``flow.release()``.
            send_buffer: the connection's ``SO_SNDBUF`` for this reply (less room in
                the kernel: the writer pauses sooner).
        """
        flow = StreamFlow(piece_size=piece_size, hold=hold, send_buffer=send_buffer)
        if self._watches is None:
            self._watches = deque()
        self._watches.append(flow)
        return flow

    def _next_flow(self) -> StreamFlow | None:
        watches = self._watches
        return watches.popleft() if watches else None
