"""``Client``: builds the onion of layers around a backend, owns the lifecycle, and
offers embeddings, batches and raw sends (the chat calls come from
[ClientCalls][llmfast.client_calls.ClientCalls])."""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from llmfast.backends.base import Backend
from llmfast.calls import ChatParams, Prompt, chat_request, resolve_model
from llmfast.client_calls import ClientCalls
from llmfast.errors import ClientClosedError, ConfigurationError
from llmfast.events import EventHook
from llmfast.hooks import fan_out
from llmfast.layers.retry import Retry
from llmfast.pool import HTTPPool, PoolConfig, Timeouts
from llmfast.providers import backend_for
from llmfast.tokens import CountMethod, TokenCount, count_request
from llmfast.transport import Layer, Request, Response, Transport
from llmfast.types import EmbeddingRequest, EmbeddingResponse, MessageLike

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from llmfast.batch import Batch, BatchItem
    from llmfast.batch.provider import ProviderBatch, ProviderBatchOptions
    from llmfast.layers.cache import CacheMode
    from llmfast.stats import Stats, StatsSnapshot

__all__ = ["DEFAULT_MAX_RETRIES", "ChatParams", "Client", "Prompt"]

_T = TypeVar("_T")

DEFAULT_MAX_RETRIES = 2
"""Retries of a ``Client`` made without ``layers=``: three attempts in all."""


class Client(ClientCalls):
    """An async LLM client: layers wrapped around a backend, over one pooled session.

    Args:
        backend: the innermost transport; by default one built for ``provider`` from
            ``base_url``/``api_key``/``model`` (see ``llmfast.backend_for``).
        provider: ``"openai"`` (default, or ``$LLMFAST_PROVIDER``), ``"anthropic"``,
            ``"ollama"``, ``"gemini"``, optionally with a model: ``"anthropic:claude-..."``.
        base_url: API root; defaults per provider (OpenAI: ``$LLMFAST_BASE_URL``,
            ``$OPENAI_BASE_URL``, then api.openai.com).
        api_key: defaults to the provider's usual variable (``$OPENAI_API_KEY``,
            ``$ANTHROPIC_API_KEY``, ``$GEMINI_API_KEY``). Never shown in reprs or errors.
        model: default model for calls that name none (default ``$LLMFAST_MODEL``).
        layers: layer factories, **outermost first**. Without it the client retries:
            ``[Retry(max_attempts=3)]`` (429s, 5xx and network errors, honouring
            ``retry-after`` and the call's deadline). A list given replaces that
            default; ``layers=[]`` means none.
        max_retries: the retries of that default stack (the ``openai`` SDK's name:
            ``max_retries=2`` is three attempts in all, ``0`` none). With ``layers=``,
            set ``Retry(max_attempts=...)`` in the list instead.
        headers: extra headers for every request.
        pool: connection-pool settings.
        timeouts: network timeouts.
        on_event: a hook every layer reports events to (see ``llmfast.events``).
        stats: ``True`` (or a ``Stats(prices=...)`` of your own) collects every call's
            figures; read them with [`stats`][llmfast.Client.stats]. Called before ``on_event``.
        prompt_cache: ``"auto"`` puts prompt-cache breakpoints on the longest stable
            prefix of every request, for a provider that needs them (Anthropic; OpenAI
            and Gemini cache by themselves). Never part of a request or its cache key.
            See ``docs/tokens.md``.

    Use it as ``async with Client(...) as client:``, or call ``await client.aclose()``.
    A client built from a provider (no ``backend``) that needs an API key and has none
    raises [`MissingCredentialsError`][llmfast.errors.MissingCredentialsError] here,
    before anything is sent.
    """

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        provider: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        layers: Sequence[Layer] | None = None,
        max_retries: int | None = None,
        headers: Mapping[str, str] | None = None,
        pool: PoolConfig | None = None,
        timeouts: Timeouts | None = None,
        on_event: EventHook | None = None,
        stats: bool | Stats = False,
        prompt_cache: Literal["auto"] | None = None,
    ) -> None:
        layers = _layers(layers, max_retries)
        if prompt_cache not in (None, "auto"):
            raise ConfigurationError(f"prompt_cache must be 'auto' or None, not {prompt_cache!r}")
        if backend is None:
            backend = backend_for(
                provider, base_url=base_url, api_key=api_key, model=model, headers=headers
            )
            if prompt_cache is not None and hasattr(backend, "prompt_cache"):
                backend.prompt_cache = prompt_cache
        elif (
            provider is not None
            or base_url is not None
            or api_key is not None
            or headers
            or prompt_cache is not None
        ):
            raise ConfigurationError(
                "pass provider/base_url/api_key/headers/prompt_cache to the backend, not both"
            )
        self.backend = backend
        self.model = model or backend.model or os.environ.get("LLMFAST_MODEL") or None
        self._pool = HTTPPool(pool, timeouts)
        self._total = self._pool.timeouts.total
        backend.bind(self._pool)
        transport: Transport = backend
        for layer in reversed(layers):
            transport = layer(transport)
        self._transport = transport
        self._send = transport.send
        collector: Stats | None = None
        if stats is True:
            from llmfast.stats import Stats  # on first use: keeps `import llmfast` fast

            collector = Stats()
        elif stats is not False:
            collector = stats
        self._stats = collector
        self.on_event = fan_out(collector, on_event)  # None when neither: reporting is off
        self._closed = False

    # --- lifecycle -------------------------------------------------------------

    async def __aenter__(self) -> Client:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        """True once the client has been closed."""
        return self._closed

    async def aclose(self) -> None:
        """Close every layer, the backend and all pooled connections."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._transport.aclose()
        finally:
            await self._pool.aclose()

    async def warmup(self, connections: int = 8) -> int:
        """Open up to ``connections`` connections now, so the first calls skip the
        TCP/TLS handshake. Returns how many were opened."""
        self._check_open()
        return await self.backend.warmup(connections)

    def find_layer(self, kind: type[_T]) -> _T | None:
        """The outermost layer of type ``kind`` in the chain (e.g. to read a rate
        limiter's queue length), or None."""
        transport: object = self._transport
        while transport is not None:
            if isinstance(transport, kind):
                return transport
            transport = getattr(transport, "inner", None)
        return None

    def stats(self) -> StatsSnapshot:
        """The figures of every call so far (``Client(stats=True)``): counts, latency
        percentiles, tokens, cost, cache hit ratio, retries. Safe from any thread."""
        if self._stats is None:
            raise ConfigurationError("stats are off: create the client with stats=True")
        return self._stats.snapshot()

    # --- embeddings, batches, raw sends ------------------------------------

    async def embed(
        self,
        input: str | Sequence[str],
        /,
        *,
        model: str | None = None,
        dimensions: int | None = None,
        encoding_format: str | None = None,
        user: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cache: CacheMode | None = None,
    ) -> EmbeddingResponse:
        """Embed one text or a batch; ``result.vectors`` are in input order."""
        if self._closed:
            raise ClientClosedError("the client is closed; create a new Client")
        body = EmbeddingRequest(
            model=resolve_model(model, self.model),
            input=input,
            dimensions=dimensions,
            encoding_format=encoding_format,  # type: ignore[arg-type]
            user=user,
            extra_body=extra_body,
        )
        request = Request(
            body,
            headers=headers,
            deadline=self._deadline(timeout),
            on_event=self.on_event,
            context=None if cache is None else {"cache": cache},
        )
        if request.on_event is not None:
            observed: EmbeddingResponse = await self._observed(request)
            return observed
        response = await self._send(request)
        result: EmbeddingResponse = await response.collect()
        return result

    @overload
    def map(
        self,
        requests: Iterable[BatchItem] | AsyncIterable[BatchItem],
        /,
        *,
        via: Literal["online"] = "online",
        concurrency: int = 16,
        ordered: bool = True,
        stop_on_error: bool = False,
        abort_on_systematic: bool = True,
        checkpoint: str | os.PathLike[str] | None = None,
        fsync: bool = True,
        progress: bool | None = None,
        total: int | None = None,
        model: str | None = None,
        **params: Unpack[ChatParams],
    ) -> Batch: ...

    @overload
    def map(
        self,
        requests: Iterable[BatchItem | EmbeddingRequest]
        | AsyncIterable[BatchItem | EmbeddingRequest],
        /,
        *,
        via: Literal["batch"],
        ordered: bool = True,
        stop_on_error: bool = False,
        checkpoint: str | os.PathLike[str] | None = None,
        fsync: bool = True,
        progress: bool | None = None,
        total: int | None = None,
        model: str | None = None,
        fallback_after: float | None = None,
        batch_options: ProviderBatchOptions | None = None,
        **params: Unpack[ChatParams],
    ) -> ProviderBatch: ...

    def map(
        self,
        requests: Iterable[Any] | AsyncIterable[Any],
        /,
        *,
        via: Literal["online", "batch"] = "online",
        concurrency: int = 16,
        ordered: bool = True,
        stop_on_error: bool = False,
        abort_on_systematic: bool = True,
        checkpoint: str | os.PathLike[str] | None = None,
        fsync: bool = True,
        progress: bool | None = None,
        total: int | None = None,
        model: str | None = None,
        fallback_after: float | None = None,
        batch_options: ProviderBatchOptions | None = None,
        **params: Unpack[ChatParams],
    ) -> Batch | ProviderBatch:
        """Run ``chat`` over many requests, ``concurrency`` at a time, through every layer.

        ``async for result in client.map(...)`` gives a ``BatchResult`` per item (input
        order unless ``ordered=False``); ``await client.map(...)`` gives the list. A failed
        item's error is its result, but failures every item would share (a rejected key,
        a server that cannot be reached) stop the batch with ``BatchAbortedError``
        unless ``abort_on_systematic=False``. ``checkpoint=path`` makes the batch
        resumable after a crash. See ``docs/sync-and-batch.md``.

        ``via="batch"`` runs the items through the provider's batch API instead (OpenAI's
        Batch API, Anthropic's Message Batches: half the price, results within 24 hours),
        returning a [`ProviderBatch`][llmfast.batch.provider.ProviderBatch] with the same
        results; ``fallback_after`` seconds sends what is still pending online, and
        ``batch_options`` sets limits and polling; items may then also be
        ``EmbeddingRequest``s (OpenAI). See ``docs/provider-batch.md``.
        """
        self._check_open()
        if via == "batch":
            import dataclasses

            from llmfast.batch.provider import ProviderBatch, ProviderBatchOptions

            options = batch_options or ProviderBatchOptions()
            if fallback_after is not None:
                options = dataclasses.replace(options, fallback_after=fallback_after)
            return ProviderBatch(
                self,
                requests,
                ordered=ordered,
                stop_on_error=stop_on_error,
                checkpoint=checkpoint,
                fsync=fsync,
                progress=progress,
                total=total,
                model=model,
                options=options,
                **params,
            )
        if via != "online":
            raise ConfigurationError(f'via must be "online" or "batch", got {via!r}')
        from llmfast.batch import Batch  # on first use: keeps `import llmfast` fast

        return Batch(
            self,
            requests,
            concurrency=concurrency,
            ordered=ordered,
            stop_on_error=stop_on_error,
            abort_on_systematic=abort_on_systematic,
            checkpoint=checkpoint,
            fsync=fsync,
            progress=progress,
            total=total,
            model=model,
            **params,
        )

    async def count_tokens(
        self,
        prompt: Prompt | None = None,
        /,
        *,
        messages: Sequence[MessageLike] | None = None,
        model: str | None = None,
        method: CountMethod | Literal["auto"] = "auto",
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **params: Unpack[ChatParams],
    ) -> TokenCount:
        """The input tokens ``chat`` would send for this prompt (same arguments), as a
        [`TokenCount`][llmfast.TokenCount] that says how they were counted: ``"exact"``
        by the provider's endpoint (Anthropic, Gemini), ``"tiktoken"`` for OpenAI models
        with the ``tokens`` extra, else ``"estimate"``. ``method=`` asks for one (a
        method not available raises ``ConfigurationError``). An exact count is one
        request straight to the backend: no layer (cache, retry, rate limit) sees it."""
        self._check_open()
        request = Request(
            chat_request(prompt, messages, model, self.model, params, "count_tokens"),
            headers=headers,
            deadline=self._deadline(timeout),
        )
        return await count_request(self.backend, request, method)

    async def send(self, request: Request) -> Response:
        """Send a prepared [`Request`][llmfast.transport.Request] through the layers; returns the
        ``Response``, which the caller must read to the end or close."""
        self._check_open()
        if request.on_event is None:
            request.on_event = self.on_event
        return await self._send(request)

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<Client{state} {self._transport!r}>"


def _layers(layers: Sequence[Layer] | None, max_retries: int | None) -> Sequence[Layer]:
    """The layers to build: those given, else the default stack shaped by ``max_retries``."""
    if layers is not None:
        if max_retries is not None:
            raise ConfigurationError(
                "max_retries= shapes the default layers, which layers=[...] replaces: put "
                "Retry(max_attempts=max_retries + 1) in your list instead"
            )
        return layers
    retries = DEFAULT_MAX_RETRIES if max_retries is None else max_retries
    if type(retries) is not int or retries < 0:
        raise ConfigurationError(f"max_retries must be an int >= 0, got {retries!r}")
    return (Retry(max_attempts=retries + 1),) if retries else ()
