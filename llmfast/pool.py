"""The Client's one pooled aiohttp session, and how its failures map to llmfast errors.

aiohttp is imported with ``llmfast``, not on first use: importing it takes 100 ms or
more, and inside the event loop that would stall every other task on the first call.
So are the modules the first DNS lookup needs (the loop's default thread pool, the
``idna`` codec).
"""

from __future__ import annotations

import asyncio
import concurrent.futures.thread  # noqa: F401 - the resolver's thread pool, made on first use
import contextlib
import encodings.idna  # noqa: F401 - how getaddrinfo encodes a host name
import time
import warnings
import weakref
from dataclasses import dataclass

import aiohttp
from yarl import URL

from llmfast import read_timer
from llmfast.errors import (
    ClientClosedError,
    ConfigurationError,
    ConnectError,
    ConnectTimeout,
    DeadlineExceeded,
    LLMFastError,
    ReadError,
    ReadTimeout,
    TransportError,
)
from llmfast.redact import redact_text, redact_url

__all__ = ["HTTPPool", "PoolConfig", "Timeouts", "map_transport_error"]

USER_AGENT = "llmfast/0.1"
_NO_CEIL = 1e9  # aiohttp rounds timeouts above this up to whole seconds; we never want that


@dataclass(frozen=True)
class Timeouts:
    """Timeouts, in seconds (``None`` disables one). Each raises its own ``Timeout``.

    Attributes:
        connect: opening a TCP (and TLS) connection (``ConnectTimeout``).
        read: the longest the server may send no bytes at all (``ReadTimeout``); in a
            stream's body, when ``idle`` is no longer, the idle limit (which keep-alives
            don't reset) stands for it.
        first_chunk: from sending a streamed request to its first event
            (``FirstChunkTimeout``).
        idle: the longest a stream may go between two events; keep-alive comments
            and pings don't count as events (``IdleTimeout``).
        total: the whole call — queueing, every retry and every fallback
            (``DeadlineExceeded``). A per-call ``timeout=`` overrides it.
    """

    connect: float | None = 10.0
    read: float | None = 600.0
    first_chunk: float | None = None
    idle: float | None = 600.0
    total: float | None = None


@dataclass(frozen=True)
class PoolConfig:
    """Connection-pool settings for the Client's aiohttp ``TCPConnector``.

    Attributes:
        limit: most connections open at once, all hosts together (0: no limit).
        limit_per_host: most connections to one host (0: no limit).
        keepalive_timeout: seconds an idle connection is kept for reuse.
        ttl_dns_cache: seconds a DNS answer is cached.
        trust_env: honour ``HTTP(S)_PROXY``/``NO_PROXY`` and ``.netrc``
            (off by default: reading them costs time on every call).
        max_body_bytes: the largest response body read whole (a non-streamed answer,
            an error body, a JSON answer to a stream request), counted after
            decompression while reading; a larger one raises
            [ResponseTooLargeError][llmfast.errors.ResponseTooLargeError].
        max_event_bytes: the largest single event of a streamed response (an SSE
            event's data, an NDJSON line) that is read into memory; a longer one ends
            the stream with ``ResponseTooLargeError`` (``None``: no limit).
    """

    limit: int = 1000
    limit_per_host: int = 0
    keepalive_timeout: float = 30.0
    ttl_dns_cache: int = 300
    trust_env: bool = False
    max_body_bytes: int = 64 * 1024 * 1024
    max_event_bytes: int | None = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1:
            raise ConfigurationError("PoolConfig.max_body_bytes must be >= 1")
        if self.max_event_bytes is not None and self.max_event_bytes < 1:
            raise ConfigurationError("PoolConfig.max_event_bytes must be >= 1 (None: no limit)")


class HTTPPool:
    """Owns one ``aiohttp.ClientSession``, created on first use inside the event loop."""

    def __init__(self, config: PoolConfig | None = None, timeouts: Timeouts | None = None):
        self.config = config or PoolConfig()
        self.timeouts = timeouts or Timeouts()
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._finalizer: weakref.finalize[[aiohttp.ClientSession], HTTPPool] | None = None

    @property
    def closed(self) -> bool:
        """True once [`aclose`][llmfast.HTTPPool.aclose] has been called."""
        return self._closed

    @property
    def session(self) -> aiohttp.ClientSession:
        """The shared session (created on first access; needs a running event loop)."""
        session = self._session
        if session is None:
            if self._closed:
                raise ClientClosedError("the client is closed")
            session = self._session = self._open()
            # Dropped without aclose() (a notebook cell re-run): release the connections
            # quietly instead of aiohttp's "Unclosed client session" error log.
            self._finalizer = weakref.finalize(self, _release, session)
            self._finalizer.atexit = False  # at exit, owners (SyncClient) close it first
        return session

    def _open(self) -> aiohttp.ClientSession:
        config, timeouts = self.config, self.timeouts
        connector = aiohttp.TCPConnector(
            limit=config.limit,
            limit_per_host=config.limit_per_host,
            keepalive_timeout=config.keepalive_timeout,
            ttl_dns_cache=config.ttl_dns_cache,
            use_dns_cache=True,
        )
        read_timer.install(connector)  # aiohttp's read timeout on the loop's shared timer
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(sock_connect=timeouts.connect, sock_read=timeouts.read),
            headers={"User-Agent": USER_AGENT},
            trust_env=config.trust_env,
            raise_for_status=False,
        )

    def call_timeout(self, total: float) -> aiohttp.ClientTimeout:
        """The session's timeouts plus a limit on this whole HTTP exchange."""
        timeouts = self.timeouts
        return aiohttp.ClientTimeout(
            total=total,
            sock_connect=timeouts.connect,
            sock_read=timeouts.read,
            ceil_threshold=_NO_CEIL,
        )

    def open_connections(self) -> int:
        """Connections open now, idle in the pool or in use."""
        connector = self._connector()
        if connector is None:
            return 0
        return sum(len(conns) for conns in connector._conns.values()) + len(connector._acquired)

    def connections_in_use(self) -> int:
        """Connections held by a request or an unread response body."""
        connector = self._connector()
        return 0 if connector is None else len(connector._acquired)

    def _connector(self) -> aiohttp.BaseConnector | None:
        session = self._session
        if session is None or session.closed:
            return None
        return session.connector

    async def aclose(self) -> None:
        """Close the session and every connection; safe to call more than once."""
        self._closed = True
        session, self._session = self._session, None
        if self._finalizer is not None:
            self._finalizer.detach()
        if session is not None:
            await session.close()

    def __repr__(self) -> str:
        c = self.config
        return f"HTTPPool(limit={c.limit}, limit_per_host={c.limit_per_host})"


def _release(session: aiohttp.ClientSession) -> None:
    """Close a collected pool's connections (synchronously: no loop may be running).

    Warns with a ``ResourceWarning`` (silent unless enabled, e.g. ``-W default`` or a
    test suite's filters), the way an unclosed file does, so leaks stay detectable.
    """
    connector = session.connector
    if connector is None or connector.closed:
        return
    with contextlib.suppress(Exception):  # a finalizer must not raise
        connector._close()  # closes every transport; a closed loop is handled
    warnings.warn(
        "an llmfast client was garbage-collected without aclose(); its connections "
        "were closed (use `async with Client(...)` or `await client.aclose()`)",
        ResourceWarning,
        stacklevel=2,
    )


def map_transport_error(
    exc: BaseException, what: str, deadline: float | None = None
) -> LLMFastError:
    """Translate an aiohttp/OS exception into the llmfast error tree.

    A timeout once the call's ``deadline`` (``time.monotonic()``) has passed is a
    ``DeadlineExceeded``. Credentials in a URL (user info, ``?key=``...) are masked
    in the message, and in ``exc`` and its causes too, which a traceback shows.
    """
    if isinstance(exc, LLMFastError):
        return exc
    scrub_exception(exc)
    detail = redact_text(f"{what}: {type(exc).__name__}: {exc}")
    if deadline is not None and isinstance(exc, TimeoutError) and time.monotonic() >= deadline:
        return DeadlineExceeded(redact_text(f"{what}: the call's deadline passed"))
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ConnectTimeout(detail)
    if isinstance(exc, (aiohttp.SocketTimeoutError, asyncio.TimeoutError)):
        return ReadTimeout(detail)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectError(detail)
    if isinstance(exc, (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, OSError)):
        return ReadError(detail)
    return TransportError(detail)


def scrub_exception(exc: BaseException) -> None:
    """Mask credentials in the URLs an exception (and its causes) would print.

    aiohttp puts the request URL, query string included, into some messages
    (``ConnectionTimeoutError``, ``InvalidURL``, ``ClientResponseError``...).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        _scrub_one(current)
        current = current.__cause__ or current.__context__


def _scrub_one(exc: BaseException) -> None:
    try:
        text = str(exc)
    except Exception:  # pragma: no cover - a broken __str__ shows nothing anyway
        return
    if redact_text(text) == text:
        return  # nothing to hide: the usual case
    exc.args = tuple(_scrub_value(arg) for arg in exc.args)
    if isinstance(exc, aiohttp.InvalidURL):
        exc._url = _scrub_value(exc._url)  # type: ignore[assignment]
    if isinstance(exc, aiohttp.ClientResponseError):
        info = exc.request_info
        exc.request_info = aiohttp.RequestInfo(
            _masked_url(info.url), info.method, info.headers, _masked_url(info.real_url)
        )
        exc.history = ()


def _scrub_value(value: object) -> object:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, URL):
        return _masked_url(value)
    return value


def _masked_url(url: URL) -> URL:
    text = str(url)
    clean = redact_url(text)
    return url if clean == text else URL(clean)
