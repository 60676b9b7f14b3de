"""The cache layer: answer a request from a store when the same one was answered before.

Put it outermost: a hit skips every layer inside it (retries, rate-limit tokens...)::

    client = llmfast.Client(model="m", layers=[Cache(ttl=3600), Coalesce(), Retry()])

Which calls are cached: with the layer in the chain (and ``enabled``), every call its
``cacheable`` policy accepts, by default deterministic ones
([`is_deterministic`][llmfast.layers.is_deterministic]: embeddings, and chats at temperature 0 or
with a seed). One call can choose otherwise with ``request.context["cache"]``:

- ``"use"``: read and store this call whatever the policy (and even when ``enabled``
  is false);
- ``"refresh"``: do not read; send the call and store the fresh answer;
- ``"bypass"``: neither read nor store.

Only finished results are stored: a completion whose every choice has a finish reason
(a stream or a plain call alike; one without, e.g. a server that interrupted it, is
delivered but not stored). Streams are copied chunk by chunk as they pass and stored
only once read to the end; an early close, a cancellation or an error stores nothing.
A hit on a stream replays the stored chunks one by one, exactly as they first came
(deltas, tool-call fragments, usage). A stream and a plain call never share an entry
(see `keys`).

Store failures never fail a call: an entry that cannot be read, decoded or written is
reported as a ``cache.error`` event and the call goes on as a miss. Hits, misses and
stores are reported as ``cache.hit``, ``cache.miss`` and ``cache.store`` (data: ``key``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Literal

import msgspec

from llmfast.accumulate import chunks_finished, completion_finished
from llmfast.errors import ConfigurationError
from llmfast.events import emit
from llmfast.layers.cache_stores import CacheStore, MemoryStore
from llmfast.layers.keys import backend_identity, is_deterministic, request_key
from llmfast.transport import Request, Response, Transport, TransportLayer
from llmfast.types import ChatCompletion, ChatCompletionChunk, EmbeddingResponse

__all__ = ["Cache", "CacheEntry", "CacheLayer", "CacheMode"]

CacheMode = Literal["use", "refresh", "bypass"]
"""What ``request.context["cache"]`` may ask for one call."""

HIT_HEADERS: Mapping[str, str] = {"x-llmfast-cache": "hit"}
"""The headers of a response served from the cache."""


class CacheEntry(msgspec.Struct, array_like=True):
    """What the cache stores for one key: a completion, embeddings, or a stream's chunks."""

    completion: ChatCompletion | None = None
    embeddings: EmbeddingResponse | None = None
    chunks: list[ChatCompletionChunk] | None = None


_encode_entry = msgspec.msgpack.Encoder().encode
_decode_entry = msgspec.msgpack.Decoder(CacheEntry).decode
_MODES = frozenset({"use", "refresh", "bypass"})


class Cache:
    """Configuration of the cache layer; ``Cache(...)(inner)`` builds a
    [`CacheLayer`][llmfast.layers.CacheLayer].

    Args:
        store: where entries live (default: a new [`MemoryStore`][llmfast.layers.MemoryStore]). The
            layer closes it when the client closes.
        ttl: seconds an entry lives (``None``: until the store evicts it).
        cacheable: the policy, deciding which calls are cached when the call does
            not say (default [`is_deterministic`][llmfast.layers.is_deterministic]).
        enabled: ``False`` caches only calls that ask with ``context["cache"] = "use"``.
        identity: the backend's part of every key (default: derived from the
            backend at the core of the chain, see
            [`backend_identity`][llmfast.layers.backend_identity]).
    """

    def __init__(
        self,
        *,
        store: CacheStore | None = None,
        ttl: float | None = 86_400.0,
        cacheable: Callable[[Request], bool] = is_deterministic,
        enabled: bool = True,
        identity: str | None = None,
    ) -> None:
        if ttl is not None and not ttl > 0:
            raise ConfigurationError("ttl must be positive or None")
        if store is not None and not isinstance(store, CacheStore):
            raise ConfigurationError("store must implement CacheStore (get/set/delete/aclose)")
        self.store: CacheStore = store if store is not None else MemoryStore()
        self.ttl = ttl
        self.cacheable = cacheable
        self.enabled = enabled
        self.identity = identity

    def __call__(self, inner: Transport) -> CacheLayer:
        return CacheLayer(inner, self)

    def __repr__(self) -> str:
        return f"Cache(store={self.store!r}, ttl={self.ttl})"


class CacheLayer(TransportLayer):
    """Serves repeated requests from a [`CacheStore`][llmfast.layers.CacheStore] (see the module
    docstring)."""

    def __init__(self, inner: Transport, config: Cache) -> None:
        super().__init__(inner)
        self.config = config
        self.store = config.store
        self._ttl = config.ttl
        self._cacheable = config.cacheable
        self._enabled = config.enabled
        self._identity = config.identity if config.identity is not None else backend_identity(inner)

    async def send(self, request: Request, /) -> Response:
        context = request.context
        mode = None if context is None else context.get("cache")
        if mode is None:
            if not (self._enabled and self._cacheable(request)):
                return await self.inner.send(request)
        elif mode not in _MODES:
            raise ConfigurationError(f"context['cache'] must be one of {sorted(_MODES)}: {mode!r}")
        elif mode == "bypass":
            return await self.inner.send(request)
        try:
            key = request_key(request, self._identity)
        except (TypeError, ValueError):  # a body msgspec cannot encode: the backend will say
            return await self.inner.send(request)
        if mode != "refresh":
            observed = request.on_event is not None
            began = time.monotonic() if observed else 0.0
            entry = await self._load(request, key)
            if observed:  # elapsed: the lookup
                took = time.monotonic() - began
                emit(request, "cache.miss" if entry is None else "cache.hit", took, key=key)
            if entry is not None:
                return _replay(request, entry)
        response = await self.inner.send(request)
        if response.stream:
            return Response(
                request,
                status=response.status,
                headers=response.headers,
                chunks=_RecordingChunks(response, self._saver(request, key)),
            )
        result = await response.collect()
        if 200 <= response.status < 300:
            if type(result) is ChatCompletion:
                if completion_finished(result):
                    await self._save(request, key, CacheEntry(completion=result))
            elif type(result) is EmbeddingResponse:
                await self._save(request, key, CacheEntry(embeddings=result))
        return Response(request, status=response.status, headers=response.headers, result=result)

    async def _load(self, request: Request, key: str) -> CacheEntry | None:
        try:
            raw = await self.store.get(key)
        except Exception as exc:
            emit(request, "cache.error", key=key, error=exc)
            return None
        if raw is None:
            return None
        try:
            entry = _decode_entry(raw)
            if entry.completion is None and entry.embeddings is None and entry.chunks is None:
                raise msgspec.ValidationError("the cache entry is empty")
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            emit(request, "cache.error", key=key, error=exc)
            return None
        return entry

    async def _save(self, request: Request, key: str, entry: CacheEntry) -> None:
        observed = request.on_event is not None
        began = time.monotonic() if observed else 0.0
        try:
            await self.store.set(key, _encode_entry(entry), self._ttl)
        except Exception as exc:
            emit(request, "cache.error", key=key, error=exc)
        else:
            if observed:  # elapsed: the write
                emit(request, "cache.store", time.monotonic() - began, key=key)

    def _saver(self, request: Request, key: str) -> Callable[[list[Any]], Awaitable[None]]:
        async def save(chunks: list[Any]) -> None:
            if all(type(chunk) is ChatCompletionChunk for chunk in chunks) and chunks_finished(
                chunks
            ):
                await self._save(request, key, CacheEntry(chunks=chunks))

        return save

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            await self.store.aclose()

    def describe(self) -> str:
        return f"Cache({self.store!r})"


def _replay(request: Request, entry: CacheEntry) -> Response:
    if entry.chunks is not None:
        return Response(request, headers=HIT_HEADERS, chunks=_iterate(entry.chunks))
    result = entry.completion if entry.completion is not None else entry.embeddings
    return Response(request, headers=HIT_HEADERS, result=result)


async def _iterate(chunks: list[ChatCompletionChunk]) -> AsyncIterator[ChatCompletionChunk]:
    for chunk in chunks:
        yield chunk


class _RecordingChunks:
    """Passes a response's chunks through, keeping a copy; saves it only at a normal end."""

    __slots__ = ("_copy", "_next", "_response", "_save")

    def __init__(self, response: Response, save: Callable[[list[Any]], Awaitable[None]]) -> None:
        self._response = response
        self._save = save
        self._copy: list[Any] | None = []
        self._next: Callable[[], Awaitable[Any]] | None = None

    def __aiter__(self) -> _RecordingChunks:
        return self

    async def __anext__(self) -> Any:
        next_chunk = self._next
        if next_chunk is None:
            next_chunk = self._next = self._response.__aiter__().__anext__
        try:
            chunk = await next_chunk()
        except StopAsyncIteration:
            copy, self._copy = self._copy, None
            if copy is not None:
                await self._save(copy)
            raise
        except BaseException:
            self._copy = None
            await self._response.aclose()
            raise
        copy = self._copy
        if copy is not None:
            copy.append(chunk)
        return chunk

    async def aclose(self) -> None:
        self._copy = None
        await self._response.aclose()
