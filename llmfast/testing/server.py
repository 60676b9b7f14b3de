"""`MockServer`: a real aiohttp server on loopback that speaks the OpenAI, Anthropic,
Ollama and Gemini HTTP APIs (see `routes.py` for which path speaks which)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import msgspec
from aiohttp import web

from llmfast import _serving

from . import _payloads as p
from . import hostile, responses_store
from ._answering import Answering, _Abort, _resolve
from ._counting import Counting, RecordedRequest, _CountingServer
from .batch_api import BATCH_PREFIXES, BatchAPI
from .count_tokens import count_answer
from .flow import FlowWatching
from .formats import BadRequest
from .prompt_cache import PromptCacheEcho
from .replies import Reply
from .routes import format_of, resolve

__all__ = ["MockServer", "RecordedRequest"]

_DECODER = msgspec.json.Decoder()
_RST_LINGER = struct.pack("ii", 1, 0)
_SHUTDOWN_TIMEOUT = 0.25
_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly.)"
)
_ROOTS = {
    "openai": "/v1",
    "openai-responses": "/v1",
    "anthropic": "/v1",
    "ollama": "",
    "gemini": "/v1beta",
}


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


class MockServer(Counting, Answering, FlowWatching):
    """An LLM API server on a free loopback port, with scripted replies.

    Use it as an async context manager (or call `start()` / `close()`). It speaks:

    - OpenAI: `POST /v1/chat/completions`, `POST /v1/embeddings`, `GET /v1/models`;
    - OpenAI Responses: `POST /v1/responses`, `GET /v1/responses/{id}` (`?stream=true`),
      `POST /v1/responses/{id}/cancel` (see `responses_store`);
    - Anthropic: `POST /v1/messages`, `POST /v1/messages/count_tokens`;
    - Ollama: `POST /api/chat`, `POST /api/embed`, `GET /api/version`;
    - Gemini: `POST /v1beta/models/{model}:generateContent`,
      `:streamGenerateContent?alt=sse`, `:embedContent`, `:batchEmbedContents`, `:countTokens`,
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
        self._prompt_cache = PromptCacheEcho()
        self._batches: BatchAPI | None = None

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
        if self._batches is not None:
            self._batches.close()
            self._batches = None
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
    def batches(self) -> BatchAPI:
        """The provider batch APIs (OpenAI files and batches, Anthropic message batches):
        their clock, faults and counters (see ``llmfast.testing.batch_api``)."""
        if self._batches is None:
            self._batches = BatchAPI(self)
        return self._batches

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
        self._prompt_cache.clear()
        self._watches = None  # watch_stream() arms

    # -- request handling ------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        arrived = time.monotonic()
        if request.path.startswith(BATCH_PREFIXES):
            return await self.batches.handle(request)
        raw = await request.read()
        bad_json = False
        body: Any = None
        if raw:
            try:
                body = _DECODER.decode(raw)
            except msgspec.DecodeError:
                bad_json = True
        number = self._arrive(request, body, arrived)
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
        if path.startswith("/v1/responses"):  # the Responses API keeps state (responses_store)
            if path != "/v1/responses":
                return await responses_store.answer(self, request, number)
            responses_store.enter(self)
        route = resolve(method, path, request.query_string)
        if route is None:
            if method == "GET" and path in ("/v1/models", "/v1beta/models", "/api/version"):
                return self._json(200, self._models, number)
            fmt = format_of(path)
            error = p.error_spec(f"Invalid URL ({method} {path})")
            return self._json(404, fmt.error_body(404, error), number, fmt=fmt)
        if bad_json or not isinstance(body, dict):
            raise BadRequest(_BAD_JSON)
        if route.kind == "count":
            return self._json(200, count_answer(route, body), number, fmt=route.fmt)
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
