"""`MockServer`: a real aiohttp server on loopback that speaks the OpenAI HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import msgspec
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from multidict import CIMultiDict

from . import _payloads as p
from .replies import Reply, split_tokens

__all__ = ["MockServer", "RecordedRequest"]

_DECODER = msgspec.json.Decoder()
_RST_LINGER = struct.pack("ii", 1, 0)
_SHUTDOWN_TIMEOUT = 0.25
_MAX_N = 128
_MAX_DIMENSIONS = 65536
_JSON = "application/json"
_SSE = "text/event-stream"
_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly.)"
)
_MALFORMED_CHAT = b'{"id": "chatcmpl-malformed", "object": "chat.completion", "choices": [}'
_MALFORMED_EMBEDDINGS = b'{"object": "list", "data": [{"embedding": [0.1, }'
_BAD_EVENT = b"data: {not json}\n\n"

_Route = Callable[[web.BaseRequest, dict[str, Any], Reply, int], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the server received (header names lower-cased, `json` None if no JSON)."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any


class _Abort(Exception):
    """Abort the current connection (a reset reply, or the server is closing)."""


class _BadRequest(Exception):
    """The request is invalid: answer 400 with this message."""


class _CountingServer(web.Server):
    """aiohttp's low-level server, reporting each accepted TCP connection."""

    def __init__(
        self,
        handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
        on_connection: Callable[[], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self._on_connection = on_connection

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self._on_connection()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _abort(request: web.BaseRequest) -> web.StreamResponse:
    """Reset the connection (SO_LINGER 0 then abort: an RST, not a FIN)."""
    transport = request.transport
    if transport is not None and not transport.is_closing():
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST_LINGER)
        transport.abort()
    return web.Response()


def _int_param(body: dict[str, Any], name: str, default: int, maximum: int) -> int:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise _BadRequest(f"Invalid value for '{name}': expected an integer in 1..{maximum}.")
    return value


class MockServer:
    """An OpenAI-compatible HTTP server on a free loopback port, with scripted replies.

    Use it as an async context manager (or call `start()` / `close()`). Requests to
    `POST /v1/chat/completions` and `POST /v1/embeddings` take the next enqueued
    `Reply`, or `default` when the queue is empty.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        default: Reply | None = None,
        model: str = "mock-model",
        record: bool = True,
    ) -> None:
        """`record=False` keeps counting requests but does not store them (long benchmarks)."""
        self.host = host
        self.default: Reply = default if default is not None else Reply.echo()
        self.model = model
        self.record = record
        self._port = port
        self._requests: list[RecordedRequest] = []
        self._queue: deque[Reply] = deque()
        self._request_count = 0
        self._connection_count = 0
        self._call_count = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._parked: set[asyncio.Future[None]] = set()
        self._closing = False
        self._runner: web.ServerRunner | None = None
        self._models = p.models_body(model, int(time.time()))
        self._routes: dict[str, _Route] = {
            "/v1/chat/completions": self._chat,
            "/v1/embeddings": self._embeddings,
        }

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and start serving."""
        if self._runner is not None:
            raise RuntimeError("MockServer is already started")
        self._closing = False
        server = _CountingServer(
            self._handle, self._count_connection, handler_cancellation=True, access_log=None
        )
        runner = web.ServerRunner(server, shutdown_timeout=_SHUTDOWN_TIMEOUT)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._port = runner.addresses[0][1]
        self._runner = runner

    async def close(self) -> None:
        """Stop serving; stalled and sleeping handlers are released and their connections reset."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._closing = True
        for future in self._parked:
            _resolve(future)
        await runner.cleanup()
        # Let the transports' connection_lost callbacks run before the caller moves on.
        for _ in range(3):
            await asyncio.sleep(0)

    async def __aenter__(self) -> MockServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- public state ----------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the requested one before `start()`)."""
        return self._port

    @property
    def url(self) -> str:
        """The base URL, including `/v1`."""
        if self._runner is None:
            raise RuntimeError("MockServer is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received (all paths), in arrival order."""
        return self._requests

    @property
    def request_count(self) -> int:
        """How many requests arrived (since start or the last `reset()`)."""
        return self._request_count

    @property
    def connection_count(self) -> int:
        """How many TCP connections were accepted (since start or the last `reset()`)."""
        return self._connection_count

    def enqueue(self, *replies: Reply) -> None:
        """Queue one-shot replies, consumed first in, first out by completions and embeddings."""
        self._queue.extend(replies)

    def reset(self) -> None:
        """Forget recorded requests, zero the counters and empty the queue."""
        self._requests.clear()
        self._queue.clear()
        self._request_count = 0
        self._connection_count = 0
        self._call_count = 0

    async def wait_for_requests(self, n: int, timeout: float = 5.0) -> None:
        """Return once `request_count >= n`; raise `TimeoutError` after `timeout` seconds."""
        if self._request_count >= n:
            return
        entry = (n, asyncio.get_running_loop().create_future())
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(entry[1], timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"got {self._request_count} of {n} requests within {timeout} s"
            ) from None
        finally:
            self._waiters.remove(entry)

    # -- request handling ------------------------------------------------------------

    def _count_connection(self) -> None:
        self._connection_count += 1

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        raw = await request.read()
        bad_json = False
        body: Any = None
        if raw:
            try:
                body = _DECODER.decode(raw)
            except msgspec.DecodeError:
                bad_json = True
        self._request_count += 1
        number = self._request_count
        if self.record:
            headers = {k.lower(): v for k, v in request.headers.items()}
            self._requests.append(RecordedRequest(request.method, request.path, headers, body))
        if self._waiters:
            for n, future in self._waiters:
                if number >= n:
                    _resolve(future)
        try:
            return await self._dispatch(request, body, bad_json, number)
        except _BadRequest as exc:
            return self._json(400, p.error_body(str(exc), "invalid_request_error"), number)
        except _Abort:
            return _abort(request)

    async def _dispatch(
        self, request: web.BaseRequest, body: Any, bad_json: bool, number: int
    ) -> web.StreamResponse:
        method, path = request.method, request.path
        route = self._routes.get(path) if method == "POST" else None
        if route is None:
            if method == "GET" and path == "/v1/models":
                return self._json(200, self._models, number)
            message = f"Invalid URL ({method} {path})"
            return self._json(404, p.error_body(message, "invalid_request_error"), number)
        if bad_json or not isinstance(body, dict):
            raise _BadRequest(_BAD_JSON)
        reply = self._queue.popleft() if self._queue else self.default
        if reply.delay:
            await self._park(reply.delay)
        kind = reply.kind
        if kind == "error":
            return self._json(reply.status, reply.body, number, reply.headers)
        if kind == "raw":
            return await self._raw(request, reply, number)
        if kind == "reset" and not reply.after_chunks:
            raise _Abort
        if kind == "stall" and not reply.after_chunks:
            await self._park()  # only close() (raising _Abort) or a hang-up ends this
        return await route(request, body, reply, number)

    async def _chat(
        self, request: web.BaseRequest, body: dict[str, Any], reply: Reply, number: int
    ) -> web.StreamResponse:
        stream = body.get("stream") is True
        if reply.kind == "stream_error" and not stream:
            return self._json(500, reply.body, number, reply.headers)
        n = _int_param(body, "n", 1, _MAX_N)
        model = body.get("model")
        model = model if isinstance(model, str) else self.model
        messages = body.get("messages")
        kind = reply.kind
        calls = reply.calls
        if kind in ("text", "tool_calls"):
            text, pieces = reply.content, reply.chunks
        else:
            text = p.last_user_text(messages)
            pieces = split_tokens(text, reply.chunk_size) if stream else ()
        ids = [call.id or self._next_call_id() for call in calls]
        completion = p.count_words(text or "") + sum(p.count_words(c.arguments) for c in calls)
        usage = p.usage(p.prompt_tokens(messages), completion * n)
        cid, created = f"chatcmpl-mock{number}", int(time.time())
        if not stream:
            message = p.message(text, calls, ids)
            data = p.completion_body(cid, created, model, n, message, reply.finish_reason, usage)
            return await self._send_body(request, reply, data, number, _MALFORMED_CHAT)

        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        framer = p.ChunkFramer(cid, created, model, include_usage)
        events = p.stream_events(
            framer,
            n,
            "" if text is not None else None,
            pieces,
            p.tool_call_deltas(calls, ids) if calls else (),
            reply.finish_reason,
            usage if include_usage else None,
        )
        response = web.StreamResponse(headers=self._headers(_SSE, number, reply.headers))
        await response.prepare(request)
        if kind in ("text", "echo", "tool_calls"):
            events.append(p.DONE)
            if reply.token_delay and len(pieces) > 1:
                # Pace the content: a pause before each content piece after the first.
                start = 0
                for piece in range(2, len(pieces) + 1):
                    await response.write(b"".join(events[start : piece * n]))
                    start = piece * n
                    await self._park(reply.token_delay)
                events = events[start:]
            await response.write(b"".join(events))
            return response
        return await self._stream_fault(response, reply, events)

    async def _stream_fault(
        self, response: web.StreamResponse, reply: Reply, events: list[bytes]
    ) -> web.StreamResponse:
        cut = reply.after_chunks
        head = b"".join(events[:cut])
        kind = reply.kind
        if kind == "malformed":
            await response.write(head + _BAD_EVENT + b"".join(events[cut:]) + p.DONE)
        elif kind == "truncated":
            await response.write(head)
        elif kind == "stream_error":
            await response.write(head + reply.event)
        else:  # reset or stall after some events
            await response.write(head)
            if kind == "stall":
                await self._park()
            raise _Abort
        return response

    async def _raw(self, request: web.BaseRequest, reply: Reply, number: int) -> web.StreamResponse:
        """Write `reply.body` as given, `chunk_size` bytes per write."""
        data = reply.body
        headers = self._headers(_JSON, number, reply.headers)
        response = web.StreamResponse(status=reply.status, headers=headers)
        await response.prepare(request)
        size = reply.chunk_size or len(data) or 1
        for start in range(0, len(data), size):
            await response.write(data[start : start + size])
        return response

    async def _embeddings(
        self, request: web.BaseRequest, body: dict[str, Any], reply: Reply, number: int
    ) -> web.StreamResponse:
        if reply.kind == "stream_error":
            return self._json(500, reply.body, number, reply.headers)
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs:
            raise _BadRequest("'input' must be a non-empty string or array.")
        texts = [x if isinstance(x, str) else p.ENCODER.encode(x).decode() for x in inputs]
        dimensions = _int_param(body, "dimensions", 8, _MAX_DIMENSIONS)
        model = body.get("model")
        model = model if isinstance(model, str) else self.model
        as_base64 = body.get("encoding_format") == "base64"
        data = p.embeddings_body(texts, dimensions, model, as_base64)
        return await self._send_body(request, reply, data, number, _MALFORMED_EMBEDDINGS)

    async def _send_body(
        self, request: web.BaseRequest, reply: Reply, data: bytes, number: int, malformed: bytes
    ) -> web.StreamResponse:
        """Send a whole JSON body, or the non-streaming form of a fault reply."""
        kind = reply.kind
        if kind == "malformed":
            data = malformed
        elif kind == "truncated":
            data = data[: len(data) // 2]
        elif kind in ("reset", "stall"):  # after_chunks > 0: headers and half the body first
            response = web.StreamResponse(headers=self._headers(_JSON, number, reply.headers))
            response.content_length = len(data)
            await response.prepare(request)
            await response.write(data[: len(data) // 2])
            if kind == "stall":
                await self._park()
            raise _Abort
        return self._json(200, data, number, reply.headers)

    # -- helpers ---------------------------------------------------------------------

    def _headers(
        self, content_type: str, number: int, extra: tuple[tuple[str, str], ...] = ()
    ) -> CIMultiDict[str]:
        headers = CIMultiDict({"Content-Type": content_type, "x-request-id": f"req_{number}"})
        if content_type == _SSE:
            headers["Cache-Control"] = "no-cache"
        if extra:
            headers.update(extra)
        return headers

    def _json(
        self, status: int, data: bytes, number: int, extra: tuple[tuple[str, str], ...] = ()
    ) -> web.Response:
        return web.Response(status=status, body=data, headers=self._headers(_JSON, number, extra))

    def _next_call_id(self) -> str:
        self._call_count += 1
        return f"call_{self._call_count}"

    async def _park(self, seconds: float | None = None) -> None:
        """Sleep `seconds` (forever if None), cut short by `close()`, which raises `_Abort`."""
        if self._closing:
            raise _Abort
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        timer = None if seconds is None else loop.call_later(seconds, _resolve, future)
        self._parked.add(future)
        try:
            await future
        finally:
            self._parked.discard(future)
            if timer is not None:
                timer.cancel()
        if self._closing:
            raise _Abort
