"""`MockServer`: a real aiohttp server on loopback that speaks the OpenAI, Anthropic,
Ollama and Gemini HTTP APIs (see `routes.py` for which path speaks which)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import msgspec
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from multidict import CIMultiDict

from llmfast import _serving

from . import _payloads as p
from . import hostile
from .formats import OPENAI, Answer, BadRequest, Route, StreamPlan, WireFormat
from .replies import Reply, split_tokens
from .routes import format_of, resolve
from .structured_replies import structured_reply

__all__ = ["MockServer", "RecordedRequest"]

_DECODER = msgspec.json.Decoder()
_RST_LINGER = struct.pack("ii", 1, 0)
_SHUTDOWN_TIMEOUT = 0.25
_JSON = "application/json"
_SSE = "text/event-stream"
_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly.)"
)
_ROOTS = {"openai": "/v1", "anthropic": "/v1", "ollama": "", "gemini": "/v1beta"}


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the server received (header names lower-cased, `json` None if no JSON,
    `query` the raw query string, `arrived` the `time.monotonic()` at which its headers
    were in: when a provider counts it against a rate limit; not compared by `==`)."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    query: str = ""
    arrived: float = dataclasses.field(default=0.0, compare=False)


class _Abort(Exception):
    """Abort the current connection (a reset reply, or the server is closing)."""


class _CountingServer(web.Server):
    """aiohttp's low-level server, reporting each TCP connection opened and closed."""

    def __init__(
        self,
        handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
        on_connection: Callable[[int], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self._on_connection = on_connection

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self._on_connection(+1)

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        super().connection_lost(handler, exc)
        self._on_connection(-1)


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


class MockServer:
    """An LLM API server on a free loopback port, with scripted replies.

    Use it as an async context manager (or call `start()` / `close()`). It speaks:

    - OpenAI: `POST /v1/chat/completions`, `POST /v1/embeddings`, `GET /v1/models`;
    - Anthropic: `POST /v1/messages`;
    - Ollama: `POST /api/chat`, `POST /api/embed`, `GET /api/version`;
    - Gemini: `POST /v1beta/models/{model}:generateContent`,
      `:streamGenerateContent?alt=sse`, `:embedContent`, `:batchEmbedContents`,
      `GET /v1beta/models`.

    Every chat and embeddings request takes the next enqueued `Reply`, or `default`
    when the queue is empty, and gets it in the wire format of its route.
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
        self._open_connections = 0
        self._open_changed = asyncio.Event()
        self._call_count = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._parked: set[asyncio.Future[None]] = set()
        self._closing = False
        self._runner: web.ServerRunner | None = None
        self._home: asyncio.AbstractEventLoop | None = None  # the loop of in_thread()
        self._models = p.models_body(model, int(time.time()))

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
        _serving.register(self._port, asyncio.get_running_loop())

    async def close(self) -> None:
        """Stop serving; stalled and sleeping handlers are released and their connections reset."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        _serving.unregister(self._port)
        self._closing = True
        for future in self._parked:
            _resolve(future)
        await runner.cleanup()
        # Let the transports' connection_lost callbacks run before the caller moves on.
        for _ in range(3):
            await asyncio.sleep(0)

    @classmethod
    @contextlib.contextmanager
    def in_thread(cls, **kwargs: Any) -> Iterator[MockServer]:
        """Run a server on an event loop of its own, in a daemon thread, for sync code.

        ``with MockServer.in_thread() as server:`` (same arguments as `MockServer`):
        blocking clients (`SyncClient`, `requests`...) and async clients on any loop can
        call it; `enqueue`, `requests` and the counters work from any thread, and
        `wait_for_requests` / `wait_open_connections` from any event loop. Leaving the
        block closes the server, stops the loop and joins the thread.
        """
        server = cls(**kwargs)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="llmfast-mock-server", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(server.start(), loop).result()
            server._home = loop
            yield server
        finally:
            server._home = None
            try:
                asyncio.run_coroutine_threadsafe(server.close(), loop).result()
                asyncio.run_coroutine_threadsafe(loop.shutdown_asyncgens(), loop).result()
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join()
                loop.close()

    async def _on_home(self, coro: Coroutine[Any, Any, None]) -> None:
        """Await ``coro`` on the server's own loop (``in_thread``) if that is not this one."""
        home = self._home
        if home is None or home is asyncio.get_running_loop():
            await coro
        else:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, home))

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
    def root_url(self) -> str:
        """The base URL without any API prefix (Ollama's base URL)."""
        return self.url.removesuffix("/v1")

    def url_for(self, provider: str) -> str:
        """The base URL a backend for `provider` (`openai`, `anthropic`, `ollama`,
        `gemini`) takes: `url`, `url`, `root_url`, `root_url + "/v1beta"`."""
        try:
            return self.root_url + _ROOTS[provider]
        except KeyError:
            raise ValueError(f"unknown provider {provider!r}") from None

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received (all paths), in arrival order."""
        return self._requests

    def arrivals(self, path: str | None = None) -> list[float]:
        """When each recorded request arrived (`time.monotonic()`, sorted), optionally only
        those to `path`: the clock a provider's rate limit counts by. The monotonic clock
        is shared by the processes of one machine, so clients elsewhere can compare."""
        return sorted(r.arrived for r in self._requests if path is None or r.path == path)

    @property
    def request_count(self) -> int:
        """How many requests arrived (since start or the last `reset()`)."""
        return self._request_count

    @property
    def connection_count(self) -> int:
        """How many TCP connections were accepted (since start or the last `reset()`)."""
        return self._connection_count

    @property
    def open_connections(self) -> int:
        """How many TCP connections are open now."""
        return self._open_connections

    async def wait_open_connections(self, n: int, timeout: float = 5.0) -> None:
        """Return once exactly `n` connections are open; raise `TimeoutError` otherwise."""
        await self._on_home(self._wait_open_connections(n, timeout))

    async def _wait_open_connections(self, n: int, timeout: float) -> None:

        async def settle() -> None:
            while self._open_connections != n:
                self._open_changed.clear()
                await self._open_changed.wait()

        try:
            await asyncio.wait_for(settle(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"{self._open_connections} connections open, not {n}, after {timeout} s"
            ) from None

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
        await self._on_home(self._wait_for_requests(n, timeout))

    async def _wait_for_requests(self, n: int, timeout: float) -> None:
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

    def _count_connection(self, change: int) -> None:
        if change > 0:
            self._connection_count += 1
        self._open_connections += change
        self._open_changed.set()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        arrived = time.monotonic()
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
            self._requests.append(
                RecordedRequest(
                    request.method, request.path, headers, body, request.query_string, arrived
                )
            )
        if self._waiters:
            for n, future in self._waiters:
                if number >= n:
                    _resolve(future)
        try:
            return await self._dispatch(request, body, bad_json, number)
        except BadRequest as exc:
            fmt = format_of(request.path)
            error = p.error_spec(str(exc))
            return self._json(400, fmt.error_body(400, error), number, fmt=fmt)
        except _Abort:
            return _abort(request)

    async def _dispatch(
        self, request: web.BaseRequest, body: Any, bad_json: bool, number: int
    ) -> web.StreamResponse:
        method, path = request.method, request.path
        route = resolve(method, path, request.query_string)
        if route is None:
            if method == "GET" and path in ("/v1/models", "/v1beta/models", "/api/version"):
                return self._json(200, self._models, number)
            fmt = format_of(path)
            error = p.error_spec(f"Invalid URL ({method} {path})")
            return self._json(404, fmt.error_body(404, error), number, fmt=fmt)
        if bad_json or not isinstance(body, dict):
            raise BadRequest(_BAD_JSON)
        reply = self._queue.popleft() if self._queue else self.default
        if reply.delay:
            await self._park(reply.delay)
        kind = reply.kind
        fmt = route.fmt
        if kind == "error":
            data = fmt.reply_error(reply, reply.status)
            return self._json(reply.http_status or reply.status, data, number, reply.headers, fmt)
        if kind == "nested" and reply.status != 200:
            data = hostile.nested_json(reply.depth)
            return self._json(reply.status, data, number, reply.headers, fmt)
        if kind == "raw":
            return await self._raw(request, reply, number, fmt)
        if kind == "reset" and not reply.after_chunks:
            raise _Abort
        if kind == "stall" and not reply.after_chunks:
            await self._park()  # only close() (raising _Abort) or a hang-up ends this
        if route.kind == "embed":
            return await self._embeddings(request, route, body, reply, number)
        return await self._chat(request, route, body, reply, number)

    async def _chat(
        self,
        request: web.BaseRequest,
        route: Route,
        body: dict[str, Any],
        reply: Reply,
        number: int,
    ) -> web.StreamResponse:
        fmt = route.fmt
        if reply is self.default and reply.kind == "echo":
            # Nothing scripted: a structured request gets a schema-valid answer.
            reply = structured_reply(fmt.name, body, number) or reply
        call = fmt.chat_call(route, body)
        if not call.model:
            call = dataclasses.replace(call, model=self.model)
        stream = call.stream
        if reply.kind == "stream_error" and not stream:
            return self._json(500, fmt.reply_error(reply, 500), number, reply.headers, fmt)
        kind = reply.kind
        calls = reply.calls
        pieces: tuple[str, ...]
        text: str | None
        if kind == "unstreamed":
            text, pieces, stream = reply.content or call.user_text, (), False
        elif kind in ("text", "tool_calls"):
            text, pieces = reply.content, reply.chunks
        else:
            text = call.user_text
            pieces = split_tokens(text, reply.chunk_size) if stream else ()
        reasoning = reply.reasoning
        completion = p.count_words(text or "") + sum(p.count_words(c.arguments) for c in calls)
        if reasoning is not None:
            completion += p.count_words(reasoning)
        answer = Answer(
            number=number,
            created=int(time.time()),
            text=text,
            pieces=pieces,
            reasoning=reasoning,
            calls=calls,
            ids=tuple(c.id or self._next_call_id(fmt) for c in calls),
            finish_reason=None if kind == "unfinished" else reply.finish_reason,
            completion_tokens=completion,
        )
        if not stream:
            data = fmt.chat_body(call, answer)
            return await self._send_body(request, reply, data, number, fmt, fmt.malformed_chat)
        plan = fmt.chat_stream(call, answer)
        headers = self._headers(fmt.stream_type, number, reply.headers, fmt)
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        if kind in ("text", "echo", "tool_calls"):
            await self._write_stream(response, plan, reply.token_delay, len(pieces))
            return response
        return await self._stream_fault(response, reply, plan, fmt)

    async def _write_stream(
        self, response: web.StreamResponse, plan: StreamPlan, token_delay: float, pieces: int
    ) -> None:
        events = [*plan.events, plan.end]
        if token_delay and pieces > 1:
            # Pace the content: a pause before each content piece after the first.
            start = 0
            for piece in range(2, pieces + 1):
                stop = plan.content_start + (piece - 1) * plan.per_piece
                await response.write(b"".join(events[start:stop]))
                start = stop
                await self._park(token_delay)
            events = events[start:]
        await response.write(b"".join(events))

    async def _stream_fault(
        self, response: web.StreamResponse, reply: Reply, plan: StreamPlan, fmt: WireFormat
    ) -> web.StreamResponse:
        events = plan.events
        cut = reply.after_chunks
        head = b"".join(events[:cut])
        kind = reply.kind
        if kind in ("malformed", "nested"):
            bad = fmt.bad_event
            if kind == "nested":
                bad = bad.replace(b"{not json}", hostile.nested_json(reply.depth))
            await response.write(head + bad + b"".join(events[cut:]) + plan.end)
        elif kind == "truncated":
            await response.write(head)
        elif kind == "unfinished":
            await response.write(head + fmt.unfinished_end(plan))
        elif kind == "stream_error":
            await response.write(head + fmt.stream_error(reply))
        elif kind == "endless":
            start = fmt.bad_event.partition(b"{not json}")[0]  # the format's event prefix
            await self._endless(response, head + start + b'{"content":"')
        else:  # reset or stall after some events
            await response.write(head)
            if kind == "stall":
                interval = reply.token_delay  # a stall's keep-alive interval
                if interval:
                    while True:  # ended by close() or the client hanging up
                        await self._park(interval)
                        try:
                            await response.write(fmt.keepalive)
                        except ConnectionError:
                            raise _Abort from None
                await self._park()
            raise _Abort
        return response

    async def _raw(
        self, request: web.BaseRequest, reply: Reply, number: int, fmt: WireFormat
    ) -> web.StreamResponse:
        """Write `reply.body` as given, `chunk_size` bytes per write."""
        data = reply.body
        headers = self._headers(_JSON, number, reply.headers, fmt)
        response = web.StreamResponse(status=reply.status, headers=headers)
        await response.prepare(request)
        size = reply.chunk_size or len(data) or 1
        for start in range(0, len(data), size):
            await response.write(data[start : start + size])
        return response

    async def _embeddings(
        self,
        request: web.BaseRequest,
        route: Route,
        body: dict[str, Any],
        reply: Reply,
        number: int,
    ) -> web.StreamResponse:
        fmt = route.fmt
        if reply.kind == "stream_error":
            return self._json(500, fmt.reply_error(reply, 500), number, reply.headers, fmt)
        call = fmt.embed_call(route, body)
        if not call.model:
            call = dataclasses.replace(call, model=self.model)
        data = fmt.embed_body(call)
        return await self._send_body(request, reply, data, number, fmt, fmt.malformed_embeddings)

    async def _send_body(
        self,
        request: web.BaseRequest,
        reply: Reply,
        data: bytes,
        number: int,
        fmt: WireFormat,
        malformed: bytes,
    ) -> web.StreamResponse:
        """Send a whole JSON body, or the non-streaming form of a fault reply."""
        kind = reply.kind
        if kind == "malformed":
            data = malformed
        elif kind == "nested":
            data = hostile.nested_json(reply.depth)
        elif kind == "truncated":
            data = data[: len(data) // 2]
        elif kind == "endless":
            response = web.StreamResponse(headers=self._headers(_JSON, number, reply.headers, fmt))
            await response.prepare(request)
            await self._endless(response, b'{"content":"')
        elif kind in ("reset", "stall"):  # after_chunks > 0: headers and half the body first
            response = web.StreamResponse(headers=self._headers(_JSON, number, reply.headers, fmt))
            response.content_length = len(data)
            await response.prepare(request)
            await response.write(data[: len(data) // 2])
            if kind == "stall":
                await self._park()
            raise _Abort
        return self._json(200, data, number, reply.headers, fmt)

    # -- helpers ---------------------------------------------------------------------

    async def _endless(self, response: web.StreamResponse, head: bytes) -> None:
        """Write ``head`` then filler without a line end until the client hangs up."""
        filler = b"a" * 65536
        try:
            await response.write(head)
            while True:  # each write waits for the client to read (flow control)
                await response.write(filler)
        except ConnectionError:
            raise _Abort from None

    def _headers(
        self,
        content_type: str,
        number: int,
        extra: tuple[tuple[str, str], ...] = (),
        fmt: WireFormat = OPENAI,
    ) -> CIMultiDict[str]:
        headers = CIMultiDict({"Content-Type": content_type, **fmt.headers(number)})
        if content_type == _SSE:
            headers["Cache-Control"] = "no-cache"
        if extra:
            headers.update(extra)
        return headers

    def _json(
        self,
        status: int,
        data: bytes,
        number: int,
        extra: tuple[tuple[str, str], ...] = (),
        fmt: WireFormat = OPENAI,
    ) -> web.Response:
        headers = self._headers(_JSON, number, extra, fmt)
        return web.Response(status=status, body=data, headers=headers)

    def _next_call_id(self, fmt: WireFormat) -> str:
        self._call_count += 1
        return f"{fmt.call_prefix}{self._call_count}"

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
