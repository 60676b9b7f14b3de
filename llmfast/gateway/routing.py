"""The gateway's few fixed routes, found by one dict look-up per request.

aiohttp's ``web.Application`` resolves a route through its URL dispatcher, a match
info and a middleware chain on every request; the gateway has five fixed paths and no
middleware, so it serves through a bare ``web.Server`` and this table instead. It
answers as the application did: ``HEAD`` wherever ``GET`` is served, a ``405`` with
``Allow`` for a known path's other methods, ``Expect: 100-continue`` honoured, the
request body limited to ``client_max_size``; its 404 and 405 answers are in the
provider's error shape rather than aiohttp's plain text.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http import HttpVersion11, RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from llmfast.gateway.answers import Failure, openai_error

__all__ = ["Handler", "Routes"]

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
Render = Callable[[Failure], bytes]


class Routes:
    """Handlers by path and method; called with each request (a ``web.Server`` handler).

    Made in the event loop that serves it.

    Args:
        client_max_size: the largest request body ``read`` accepts (413 beyond).
    """

    def __init__(self, client_max_size: int) -> None:
        self.client_max_size = client_max_size
        self._loop = asyncio.get_running_loop()
        self._paths: dict[str, dict[str, Handler]] = {}
        self._allow: dict[str, str] = {}
        self._render: dict[str, Render] = {}

    def add(self, method: str, path: str, handler: Handler, render: Render = openai_error) -> None:
        """Serve ``method`` on ``path`` (``GET`` serves ``HEAD`` too); ``render`` shapes
        the path's 405 answer."""
        methods = self._paths.setdefault(path, {})
        methods[method] = handler
        if method == hdrs.METH_GET:
            methods.setdefault(hdrs.METH_HEAD, handler)
        self._allow[path] = ",".join(sorted(methods))
        self._render[path] = render

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.rel_url.path_safe  # what aiohttp's dispatcher matches on
        methods = self._paths.get(path)
        if methods is None:
            failure = Failure(404, f"Invalid URL ({request.method} {path})", "not_found")
            return _answer(failure, openai_error, {})
        handler = methods.get(request.method)
        if handler is None:
            message = f"Method {request.method} not allowed on {path}"
            failure = Failure(405, message, "method_not_allowed")
            return _answer(failure, self._render[path], {"Allow": self._allow[path]})
        if request.headers.get(hdrs.EXPECT):
            await _expect(request)
        return await handler(request)

    def request_factory(
        self,
        message: RawRequestMessage,
        payload: StreamReader,
        protocol: RequestHandler,
        writer: AbstractStreamWriter,
        task: asyncio.Task[None],
    ) -> web.BaseRequest:
        """A request whose body is limited to ``client_max_size`` (``web.Server``'s
        ``request_factory``)."""
        return web.BaseRequest(
            message,
            payload,
            protocol,
            writer,
            task,
            self._loop,
            client_max_size=self.client_max_size,
        )


def _answer(failure: Failure, render: Render, headers: dict[str, str]) -> web.Response:
    return web.Response(
        status=failure.status,
        body=render(failure),
        content_type="application/json",
        headers=headers,
    )


async def _expect(request: web.BaseRequest) -> None:
    """``Expect: 100-continue`` as aiohttp's application answers it (a 417 for any
    other expectation)."""
    expect = request.headers.get(hdrs.EXPECT, "")
    if request.version == HttpVersion11:
        if expect.lower() == "100-continue":
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0  # the answer's own body is yet to come
        else:
            raise web.HTTPExpectationFailed(text=f"Unknown Expect: {expect}")
