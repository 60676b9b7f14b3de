"""What every backend shares: the Backend protocol and an HTTP base class.

A backend is the innermost Transport: it speaks one provider's wire format over the
Client's pooled aiohttp session, and maps every failure into ``llmfast.errors``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from llmfast.backends._intake import SSE_TYPES, chunk_of
from llmfast.backends.watchdog import StreamWatchdog
from llmfast.errors import (
    APIStatusError,
    ClientClosedError,
    DeadlineExceeded,
    FirstChunkTimeout,
    LLMFastError,
    error_for_status,
)
from llmfast.pool import HTTPPool, map_transport_error
from llmfast.redact import redact_url
from llmfast.transport import Request, Response
from llmfast.types import ChatCompletion, ChatCompletionChunk, EmbeddingRequest, EmbeddingResponse

if TYPE_CHECKING:
    import aiohttp

    from llmfast.backends._http import StreamParser

_T = TypeVar("_T")


async def _within(awaitable: Awaitable[_T], seconds: float) -> _T:
    """Await with a timeout, raising the builtin ``TimeoutError`` when it passes."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)  # pragma: no cover - Python 3.10


__all__ = ["Backend", "HTTPBackend"]


@runtime_checkable
class Backend(Protocol):
    """A Transport that talks to one provider. See ``docs/backends.md``.

    Optional capability: ``async def count_tokens(self, request) -> int``, an exact
    count of a chat request's input tokens by the provider's endpoint
    ([`TokenCounter`][llmfast.tokens.TokenCounter]; used by
    [`Client.count_tokens`][llmfast.Client.count_tokens]).
    """

    kind: str
    model: str | None

    def bind(self, pool: HTTPPool) -> None:
        """Use ``pool`` for HTTP (the Client calls this once, before any call)."""
        ...

    async def warmup(self, connections: int) -> int:
        """Open up to ``connections`` connections ahead of the first call."""
        ...

    async def send(self, request: Request, /) -> Response:
        """Send one request (see ``Transport``)."""
        ...

    async def aclose(self) -> None:
        """Release what the backend holds (not the Client's pool)."""
        ...


class HTTPBackend:
    """Base for backends that speak HTTP through an [`HTTPPool`][llmfast.HTTPPool].

    Subclasses implement the wire format's decoding hooks (``decode_chat``,
    ``decode_embeddings``, ``stream_parser``, maybe ``status_error``);
    ``llmfast.backends._respond.respond`` takes every response in through them.
    """

    kind = "http"
    request_id_header = "x-request-id"
    stream_types: frozenset[str] = SSE_TYPES
    """Media types of this backend's streamed answers."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._extra_headers = dict(headers or {})
        self._pool: HTTPPool | None = None
        self._owns_pool = False

    def bind(self, pool: HTTPPool) -> None:
        self._pool = pool
        self._owns_pool = False

    @property
    def pool(self) -> HTTPPool:
        """The pool this backend sends through (its own one if never bound to a Client's)."""
        pool = self._pool
        if pool is None:
            pool = self._pool = HTTPPool()
            self._owns_pool = True
        return pool

    def warmup_url(self) -> str:
        """A cheap GET used to open connections (overridden per provider)."""
        return self.base_url + "/models"

    def auth_headers(self) -> Mapping[str, str]:
        """Headers that authenticate a request (never logged)."""
        return {}

    async def warmup(self, connections: int) -> int:
        """Open up to ``connections`` pooled connections with concurrent cheap GETs.

        Returns how many requests got an answer (of any status).
        """
        if self.pool.closed:
            raise ClientClosedError("the client is closed")
        session = self.pool.session
        url = self.warmup_url()
        headers = {**self._extra_headers, **self.auth_headers()}

        async def one() -> bool:
            try:
                async with session.get(url, headers=headers) as resp:
                    await resp.read()
            except Exception as exc:
                raise map_transport_error(exc, f"warming up {self.base_url}") from exc
            return True

        results = await asyncio.gather(*(one() for _ in range(connections)), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, LLMFastError):
                raise result
        opened = sum(1 for r in results if r is True)
        if connections and not opened:
            raise next(r for r in results if isinstance(r, BaseException))
        return opened

    async def post(
        self, request: Request, url: Any, data: bytes, headers: Mapping[str, str]
    ) -> aiohttp.ClientResponse:
        """POST ``data`` through the pool, within the call's deadline and, for a stream,
        the first-chunk timeout; aiohttp failures become llmfast errors."""
        pool = self.pool
        session = pool.session
        deadline = request.deadline
        first_chunk = pool.timeouts.first_chunk if request.stream else None
        try:
            if deadline is None and first_chunk is None:
                return await session.post(url, data=data, headers=headers)
            timeout = None
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DeadlineExceeded("the call's deadline passed before it was sent")
                timeout = pool.call_timeout(remaining)
            if first_chunk is None:
                return await session.post(url, data=data, headers=headers, timeout=timeout)
            try:
                return await _within(
                    session.post(url, data=data, headers=headers, timeout=timeout), first_chunk
                )
            except TimeoutError as exc:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
                raise FirstChunkTimeout(
                    f"no response headers within the first-chunk timeout ({first_chunk} s)"
                ) from exc
        except Exception as exc:
            raise map_transport_error(exc, f"POST {url}", deadline) from exc

    def watch(self, request: Request, resp: aiohttp.ClientResponse) -> StreamWatchdog | None:
        """A watchdog for the stream ``resp``'s first-chunk and idle timeouts (None when
        both are off).

        When the idle limit is no longer than the read timeout, it covers the body, and
        aiohttp's read timer is turned off for it: aiohttp re-arms that timer at every
        read (a new ``TimerHandle`` a read, about as much work as the rest of a chunk),
        and in a stream that arrives a token a read, that is every chunk.
        """
        timeouts = self.pool.timeouts
        idle = timeouts.idle
        if timeouts.first_chunk is None and idle is None:
            return None
        first_at = None
        if timeouts.first_chunk is not None:
            first_at = asyncio.get_running_loop().time() + timeouts.first_chunk
        if idle is not None and (timeouts.read is None or idle <= timeouts.read):
            connection = resp.connection
            protocol = connection.protocol if connection is not None else None
            if protocol is not None:
                protocol.read_timeout = None  # its pending timer goes at the next read
        return StreamWatchdog(resp.close, first_chunk_at=first_at, idle=idle)

    async def send(self, request: Request, /) -> Response:
        raise NotImplementedError

    # -- decoding hooks (the wire format) -----------------------------------------------

    def decode_chat(self, raw: bytes) -> ChatCompletion:
        """A whole (non-streamed) chat response; raises only ``DecodeError``
        (``ErrorBody`` for an error body)."""
        raise NotImplementedError

    def decode_embeddings(self, raw: bytes, body: EmbeddingRequest) -> EmbeddingResponse:
        """A whole embeddings response; raises only ``DecodeError``."""
        raise NotImplementedError

    def stream_parser(self) -> StreamParser:
        """A fresh parser for one streamed response."""
        raise NotImplementedError

    def body_chunks(self, raw: bytes) -> list[ChatCompletionChunk]:
        """The chunks of a whole JSON body sent to a stream request (one, by default)."""
        return [chunk_of(self.decode_chat(raw))]

    def status_error(self, status: int, body: Any, headers: Mapping[str, str]) -> APIStatusError:
        """The error for an error response (``body`` as JSON, or text)."""
        return error_for_status(status, body, headers, request_id_header=self.request_id_header)

    async def aclose(self) -> None:
        """Close the pool if the backend made its own; a Client's pool is the Client's."""
        if self._owns_pool and self._pool is not None:
            await self._pool.aclose()

    def describe(self) -> str:
        """How ``repr(client)`` shows this backend (never the key, nor credentials in the URL)."""
        model = f", model={self.model!r}" if self.model else ""
        return f"{type(self).__name__}({redact_url(self.base_url)!r}{model})"

    def __repr__(self) -> str:
        return self.describe()
