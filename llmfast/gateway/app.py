"""[`Gateway`][llmfast.gateway.Gateway]: the aiohttp server in front of the fleet.

Each request is identified by its virtual key (401 without a valid one), checked
(4xx in OpenAI's error shape for bad input), sent through its tenant's limit and its
model's layers, and answered; a stream is forwarded chunk by chunk as it arrives,
and a client that goes away cancels its upstream call (unless coalescing shares it
with other callers). Stopping drains: the listener closes at once, in-flight calls
get ``server.grace`` seconds to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, BinaryIO

from aiohttp import web

from llmfast.gateway import anthropic_routes, openai_routes
from llmfast.gateway.access_log import TENANT_KEY, AccessLog, access_logger_class, stderr_bytes
from llmfast.gateway.answers import Failure, Scrubber, failure_of, openai_error, retry_after_header
from llmfast.gateway.anthropic_wire import anthropic_error
from llmfast.gateway.config import GatewayConfig, env_secret, listen_address
from llmfast.gateway.fleet import Fleet, UnknownModelError
from llmfast.gateway.metrics import CONTENT_TYPE, GatewayMetrics
from llmfast.gateway.openai_routes import BadInput, error_response
from llmfast.gateway.routing import Routes
from llmfast.gateway.tenants import Tenant, Tenants
from llmfast.transport import Request, Response
from llmfast.types import ChatRequest, EmbeddingRequest

__all__ = ["Call", "Gateway"]

_log = logging.getLogger("llmfast.gateway")
Endpoint = Callable[["Call"], Awaitable[web.StreamResponse]]


class Call:
    """One request to the gateway, as an endpoint handles it."""

    __slots__ = ("_context", "_stream", "gateway", "http", "model", "started", "tenant")

    def __init__(self, gateway: Gateway, http: web.BaseRequest, tenant: Tenant) -> None:
        self.gateway = gateway
        self.http = http
        self.tenant = tenant
        self.model = "-"  # until the body names one
        self.started = time.monotonic()
        self._stream: web.StreamResponse | None = None
        self._context: dict[str, Any] = {}

    async def body(self) -> bytes:
        """The request body (413 when it is over ``server.max_body_bytes``)."""
        try:
            return await self.http.read()
        except web.HTTPRequestEntityTooLarge:
            limit = self.gateway.config.server.max_body_bytes
            raise BadInput(413, f"the request body is over {limit} bytes", "too_large") from None

    def request_for(
        self, body: ChatRequest | EmbeddingRequest, *, stream: bool, raw_events: bool = False
    ) -> Request:
        """The llmfast request for ``body``: a model this key may use, with its deadline.

        ``raw_events``: the caller forwards a stream's event bytes when it can; asked
        for only when the model's stack allows it (``Fleet.forwards_events``).
        """
        if body.model not in self.gateway.config.models or not self.tenant.may_use(body.model):
            raise UnknownModelError(body.model)
        self.model = body.model
        fleet = self.gateway.fleet
        timeout = fleet.timeout_of(body.model)
        metrics = self.gateway.metrics
        labels = (body.model, self.tenant.name)
        raw = raw_events and stream and fleet.forwards_events(body.model)
        request = openai_routes.request_for(body, stream, timeout, labels, metrics.on_event, raw)
        self._context = request.context or {}
        return request

    async def send(self, request: Request) -> Response:
        """Send ``request`` through this tenant's limit and its model's layers."""
        return await self.gateway.fleet.transport_for(self.tenant.name).send(request)

    def note_usage(self, usage: Any) -> None:
        """Count the tokens an upstream reported for this call."""
        if usage is not None and not self._context.get("cache_hit"):
            self.gateway.metrics.usage(self.model, self.tenant.name, usage)

    def note_first_chunk(self) -> None:
        elapsed = time.monotonic() - self.started
        self.gateway.metrics.first_chunk_after(self.model, self.tenant.name, elapsed)

    def json(self, body: bytes) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    async def start_stream(self, content_type: str) -> web.StreamResponse:
        """Start a streamed answer (its chunks follow with ``write``); the headers go out
        with the first ``write``, in one send."""
        out = _StreamAnswer(headers={"Content-Type": content_type, "Cache-Control": "no-cache"})
        await out.prepare(self.http)
        self._stream = out
        return out

    def failure(self, exc: BaseException) -> Failure:
        """How ``exc`` is answered (and counted)."""
        failure = failure_of(exc, self.gateway.scrub)
        self.note_failure(failure)
        return failure

    def note_failure(self, failure: Failure) -> None:
        self.gateway.metrics.error(self.model, self.tenant.name, failure.code, failure.status)


class _StreamAnswer(web.StreamResponse):
    """A streamed answer whose headers wait for its first chunk, to go out in the same
    send (aiohttp's own ``web.Response`` does this; a plain ``StreamResponse`` sends
    them alone at ``prepare``). The gateway writes the first chunk right after
    ``prepare``, so nothing waits for it."""

    _send_headers_immediately = False


class Gateway:
    """An OpenAI-compatible HTTP gateway over llmfast clients, one per model alias.

    ``async with Gateway(config) as gateway:`` listens on ``server.listen`` (port 0
    picks a free one: read [`url`][llmfast.gateway.Gateway.url]); leaving the block
    drains in-flight calls for up to ``server.grace`` seconds, then stops.

    Args:
        config: the checked configuration ([`load_config`][llmfast.gateway.load_config]).
        reuse_port: listen with ``SO_REUSEPORT`` (several processes on one port).
        access_log: where the access log's lines go when ``server.access_log`` is
            ``true`` (a binary stream; default: stderr).
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        reuse_port: bool = False,
        access_log: BinaryIO | None = None,
    ) -> None:
        self.config = config
        self.reuse_port = reuse_port
        self._access_stream = access_log
        self._access: AccessLog | None = None
        self.tenants = Tenants(config)
        secrets = [env_secret(d.api_key_env) for m in config.models.values() for d in m.deployments]
        self.scrub = Scrubber(secrets)
        self.metrics = GatewayMetrics()
        self.fleet = Fleet(config)
        self.started = time.time()
        self._runner: web.ServerRunner | None = None
        self._site: web.TCPSite | None = None
        self._port: int | None = None

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Start listening."""
        routes = Routes(client_max_size=self.config.server.max_body_bytes)
        routes.add("POST", "/v1/chat/completions", self._endpoint(openai_routes.chat_completions))
        routes.add("POST", "/v1/embeddings", self._endpoint(openai_routes.embeddings))
        routes.add("GET", "/v1/models", self._endpoint(openai_routes.models))
        messages = self._endpoint(anthropic_routes.messages, anthropic_error)
        routes.add("POST", "/v1/messages", messages, anthropic_error)
        routes.add("GET", "/health", self._health)
        if self.config.server.metrics:
            routes.add("GET", "/metrics", self._metrics)
        self._access = self._open_access_log()
        server = web.Server(
            routes,
            request_factory=routes.request_factory,
            handler_cancellation=True,
            **_access_log_options(self._access),
        )
        runner = web.ServerRunner(server, shutdown_timeout=self.config.server.grace)
        await runner.setup()
        host, port = listen_address(self.config)
        site = web.TCPSite(runner, host, port, reuse_port=self.reuse_port or None)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            self._close_access_log()
            raise
        self._runner, self._site = runner, site
        listening = site._server
        sockets = getattr(listening, "sockets", None) or ()
        self._port = sockets[0].getsockname()[1] if sockets else port

    def _open_access_log(self) -> AccessLog | None:
        """The access log ``server.access_log`` names: ``true`` (stderr, or the stream
        given to the constructor), a file path (appended to), or ``false`` (none)."""
        target = self.config.server.access_log
        if target is False:
            return None
        if isinstance(target, str):
            return AccessLog(open(target, "ab"))  # closed in aclose
        return AccessLog(self._access_stream or stderr_bytes())

    def _close_access_log(self) -> None:
        log, self._access = self._access, None
        if log is None:
            return
        log.flush()
        if isinstance(self.config.server.access_log, str):
            log.stream.close()

    @property
    def url(self) -> str:
        """The gateway's root URL, e.g. ``http://127.0.0.1:4000`` (OpenAI clients use
        ``url + "/v1"`` as their base URL)."""
        host, _ = listen_address(self.config)
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{host}:{self._port}"

    async def stop_listening(self) -> None:
        """Close the listener: new connections are refused from now on, while calls in
        flight go on ([`aclose`][llmfast.gateway.Gateway.aclose] waits for them)."""
        runner = self._runner
        if runner is not None:
            for site in list(runner.sites):
                await site.stop()

    async def aclose(self) -> None:
        """Stop listening, let in-flight calls finish (up to ``server.grace``), close."""
        runner, self._runner = self._runner, None
        try:
            if runner is not None:
                await runner.cleanup()
        finally:
            self._close_access_log()
            await self.fleet.aclose()

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- requests --------------------------------------------------------------

    def _endpoint(
        self, endpoint: Endpoint, render: Callable[[Failure], bytes] = openai_error
    ) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
        """``endpoint`` with the key check and errors answered in ``render``'s shape."""
        name = endpoint.__name__

        async def handle(http: web.BaseRequest) -> web.StreamResponse:
            tenant = self.tenants.identify(http.headers)
            if tenant is None:
                self.metrics.request_done(name, "-", "-", 401, 0.0)
                failure = Failure(401, "a valid API key is required", "invalid_api_key")
                self.metrics.error("-", "-", failure.code, 401)
                return error_response(401, render(failure), {})
            http[TENANT_KEY] = tenant.name
            call = Call(self, http, tenant)
            answer = await self._answer(call, endpoint, render)
            elapsed = time.monotonic() - call.started
            self.metrics.request_done(name, call.model, tenant.name, answer.status, elapsed)
            return answer

        return handle

    async def _answer(
        self, call: Call, endpoint: Endpoint, render: Callable[[Failure], bytes]
    ) -> web.StreamResponse:
        try:
            return await endpoint(call)
        except BadInput as bad:
            failure = Failure(bad.status, bad.message, bad.code)
            call.note_failure(failure)
        except Exception as exc:
            failure = call.failure(exc)
        if call._stream is not None:  # the headers are out: end the stream
            with contextlib.suppress(Exception):
                await call._stream.write_eof()
            return call._stream
        return error_response(failure.status, render(failure), retry_after_header(failure))

    async def _metrics(self, http: web.BaseRequest) -> web.Response:
        body = self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def _health(self, http: web.BaseRequest) -> web.Response:
        ready = self.fleet.ready()
        status = 200 if all(ready.values()) else 503
        body = {
            "status": "ok" if status == 200 else "degraded",
            "models": ready,
            "pid": os.getpid(),
        }
        return web.json_response(body, status=status)


def _access_log_options(log: AccessLog | None) -> dict[str, Any]:
    """aiohttp's access-log arguments for ``log`` (its logger argument only turns the
    log on: the lines go to ``log``)."""
    if log is None:
        return {"access_log": None}
    return {"access_log_class": access_logger_class(log), "access_log": _log}


async def run_until_stopped(gateway: Gateway, stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set, then drain and close."""
    async with gateway:
        _log.info("llmfast gateway listening on %s", gateway.url)
        await stop.wait()
