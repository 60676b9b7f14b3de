"""What a provider-batch transport is (``ProviderAPI``), the normalized state of one
batch, and the HTTP shared by both: JSON calls with the backend's credentials over the
client's pool, and downloads read line by line (never a whole file in memory)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from llmfast.errors import APIStatusError, ConfigurationError, DecodeError
from llmfast.pool import map_transport_error
from llmfast.types import ChatCompletion, ChatRequest, EmbeddingRequest, EmbeddingResponse

__all__ = ["BatchLimits", "BatchState", "Http", "ItemResult", "Lookup", "ProviderAPI"]

_DECODE = msgspec.json.Decoder().decode
_MAX_LINE = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """How much one provider batch may hold: the provider's limits, or smaller ones.

    Attributes:
        max_requests: the most requests in one batch.
        max_bytes: the largest request file (OpenAI) or create body (Anthropic).
        max_in_flight: the most batches submitted and not yet ended at once.
    """

    max_requests: int
    max_bytes: int
    max_in_flight: int = 16

    def __post_init__(self) -> None:
        if self.max_requests < 1 or self.max_bytes < 1024 or self.max_in_flight < 1:
            raise ConfigurationError(
                "BatchLimits: max_requests and max_in_flight >= 1, max_bytes >= 1024"
            )


@dataclass(slots=True)
class BatchState:
    """One batch as the provider reports it, normalized.

    Attributes:
        status: the provider's own word (``validating``, ``in_progress``, ``ended``...).
        ended: True once no item will change any more (results can be read).
        counts: the provider's counts (``completed``/``failed`` or ``succeeded``...).
        failure: why the whole batch failed (validation), or ``None``.
    """

    id: str
    status: str
    ended: bool
    counts: dict[str, int] = field(default_factory=dict)
    failure: str | None = None
    raw: Any = None


@dataclass(slots=True)
class ItemResult:
    """One line of a batch's results: ``value`` or ``error``; ``again`` when the item
    was not run (expired, cancelled) and should be submitted again."""

    custom_id: str
    value: ChatCompletion | EmbeddingResponse | None = None
    error: Exception | None = None
    again: bool = False


class Lookup(Protocol):
    """A batch's requests by ``custom_id``."""

    def get(self, custom_id: str) -> ChatRequest | EmbeddingRequest | None: ...


class ProviderAPI(Protocol):
    """One provider's batch API, as the engine drives it."""

    name: str
    limits: BatchLimits
    head: bytes
    separator: bytes
    tail: bytes

    def line(self, custom_id: str, request: ChatRequest | EmbeddingRequest) -> bytes:
        """One item as it goes in the request file (without separator)."""
        ...

    async def submit(self, path: str, key: str, embeddings: bool) -> str:
        """Upload the file at ``path`` and create a batch marked ``key``; its id."""
        ...

    async def find(self, key: str, count: int, since: float, known: set[str]) -> str | None:
        """The id of a batch created for ``key`` (a crash hid it), or ``None``."""
        ...

    async def state(self, batch_id: str) -> BatchState:
        """The batch's current state."""
        ...

    def results(self, state: BatchState, requests: Lookup) -> AsyncIterator[ItemResult]:
        """Every result line of an ended batch (``requests`` by ``custom_id`` is only
        consulted for embeddings requests, to decode them)."""
        ...

    async def cancel(self, batch_id: str) -> None:
        """Ask the provider to cancel the batch."""
        ...


class Http:
    """Calls to a provider's API root with a backend's credentials and pool."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.base = backend.base_url
        self.headers: dict[str, str] = dict(backend.auth_headers())

    async def json(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        """Call ``path`` (under the API root) and decode the JSON answer."""
        session = self.backend.pool.session
        url = self.base + path
        data = None if body is None else msgspec.json.encode(body)
        headers = {**self.headers, **({"Content-Type": "application/json"} if data else {})}
        headers.update(kw.pop("headers", {}))
        try:
            async with session.request(
                method, url, data=kw.pop("raw", data), headers=headers, **kw
            ) as resp:
                raw = await resp.read()
                status, resp_headers = resp.status, resp.headers
        except Exception as exc:
            raise map_transport_error(exc, f"{method} {url}") from exc
        return self.decode(status, raw, resp_headers, f"{method} {path}")

    def decode(self, status: int, raw: bytes, headers: Mapping[str, str], what: str) -> Any:
        """The JSON of an answer, or the backend's error for its status."""
        try:
            body = _DECODE(raw) if raw else None
        except msgspec.DecodeError:
            body = raw.decode("utf-8", "replace")[:500]
            if status < 400:
                raise DecodeError(f"{what}: the answer is not JSON") from None
        if status >= 400:
            error: APIStatusError = self.backend.status_error(status, body, headers)
            raise error
        return body

    async def lines(self, path: str) -> AsyncIterator[bytes]:
        """The lines of a download, as they arrive."""
        session = self.backend.pool.session
        url = path if path.startswith(("http://", "https://")) else self.base + path
        try:
            async with session.get(url, headers=self.headers) as resp:
                if resp.status >= 400:
                    self.decode(resp.status, await resp.read(), resp.headers, f"GET {path}")
                tail = b""
                async for chunk in resp.content.iter_chunked(1 << 16):
                    pieces = (tail + chunk).split(b"\n")
                    tail = pieces.pop()
                    if len(tail) > _MAX_LINE:
                        raise DecodeError(f"GET {path}: a result line over {_MAX_LINE} bytes")
                    for piece in pieces:
                        if piece.strip():
                            yield piece
                if tail.strip():
                    yield tail
        except (APIStatusError, DecodeError):
            raise
        except Exception as exc:
            raise map_transport_error(exc, f"GET {url}") from exc
