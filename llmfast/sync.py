"""``SyncClient``: the async ``Client`` for scripts, notebooks and threads.

The async client lives on a private event loop that runs on a background thread
(started on the first call, one per ``SyncClient``); each call is handed to that loop
with ``asyncio.run_coroutine_threadsafe`` and the calling thread waits for its result.
So it works the same in a plain script, inside Jupyter or IPython, or from an async
web framework's handler (an event loop already running in the calling thread is never
touched: no ``nest_asyncio``), and many threads may share one ``SyncClient``::

    with llmfast.SyncClient(model="gpt-4o-mini") as client:
        print(client.chat("Say hello").text)
        with client.stream("Tell me a story") as stream:
            for text in stream.text_deltas():
                print(text, end="", flush=True)
        for result in client.map(prompts, concurrency=32, checkpoint="run.jsonl"):
            ...
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import (
    AsyncIterable,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from llmfast._loop_thread import LoopThread, local_ports, shutdown
from llmfast.client import Client, Prompt
from llmfast.errors import ClientClosedError
from llmfast.stream import ChatStream
from llmfast.sync_stream import Closing, SyncBatch, SyncChatStream
from llmfast.tokens import CountMethod, TokenCount
from llmfast.types import ChatCompletion, EmbeddingRequest, EmbeddingResponse, MessageLike

if TYPE_CHECKING:
    from typing_extensions import Self, Unpack

    from llmfast.batch import Batch, BatchItem
    from llmfast.batch.provider import ProviderBatch, ProviderBatchOptions
    from llmfast.client import ChatParams
    from llmfast.layers.cache import CacheMode
    from llmfast.stats import StatsSnapshot
    from llmfast.structured.call import Output, StructuredCompletion
    from llmfast.structured.loop import ToolRun

__all__ = ["SyncBatch", "SyncChatStream", "SyncClient"]

T = TypeVar("T")


class SyncClient(Closing):
    """A blocking client with the calls of [`llmfast.Client`][llmfast.Client].

    Takes the same arguments as ``Client`` (``model=``, ``base_url=``, ``layers=``,
    ``max_retries=``...), and so retries like it by default.
    Use it as ``with SyncClient(...) as client:`` or call ``close()``; it is also
    closed when garbage-collected or at interpreter exit. Safe to share between
    threads. A call that would wait forever raises ``RuntimeError`` at once: one made
    from its own event loop's thread (e.g. from an ``on_event`` hook), or one to a local
    server run by the event loop of the calling thread (a ``MockServer`` started with
    ``await server.start()`` in a notebook: use ``MockServer.in_thread()`` there).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args = args
        self._kwargs = kwargs
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"closed": False}  # shared with the finalizer
        self._finalizer = weakref.finalize(self, shutdown, self._state)

    # --- lifecycle -------------------------------------------------------------------

    def _start(self) -> tuple[Client, LoopThread]:
        with self._lock:
            if self._state["closed"]:
                raise ClientClosedError("the client is closed; create a new SyncClient")
            runner: LoopThread | None = self._state.get("runner")
            if runner is None:
                runner = self._state["runner"] = LoopThread()
                try:
                    client = runner.call(self._make_client())
                except BaseException:
                    self._state.pop("runner")
                    runner.stop()
                    raise
                self._state["client"] = client
                runner.local_ports = local_ports(client)
            return self._state["client"], runner

    async def _make_client(self) -> Client:
        return Client(*self._args, **self._kwargs)  # built on the loop it will run on

    def _run(self, coro: Coroutine[Any, Any, T], *, closing: bool = False) -> T:
        try:
            _, runner = self._start()
        except BaseException:
            coro.close()
            raise
        return runner.call(coro, closing=closing)

    @property
    def client(self) -> Client:
        """The async ``Client`` (it lives on the background loop: use it only there)."""
        return self._start()[0]

    @property
    def model(self) -> str | None:
        """The default model."""
        return self.client.model

    @property
    def closed(self) -> bool:
        """True once the client has been closed."""
        return bool(self._state["closed"])

    def stats(self) -> StatsSnapshot:
        """The figures of every call so far (``SyncClient(stats=True)``; see ``Client.stats``)."""
        return self.client.stats()

    def close(self) -> None:
        """Close the async client and its connections, and stop the loop thread."""
        with self._lock:  # no loop can start after this
            self._state["closed"] = True
        self._finalizer()

    def __enter__(self) -> Self:
        if self.closed:
            raise ClientClosedError("the client is closed; create a new SyncClient")
        return self

    # --- calls -----------------------------------------------------------------------

    @overload
    def chat(
        self,
        prompt: Prompt | None = None,
        /,
        *,
        output: type[T] | Output[T],
        messages: Sequence[MessageLike] | None = None,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cache: CacheMode | None = None,
        **params: Unpack[ChatParams],
    ) -> StructuredCompletion[T]: ...

    @overload
    def chat(
        self,
        prompt: Prompt | None = None,
        /,
        *,
        output: None = None,
        messages: Sequence[MessageLike] | None = None,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cache: CacheMode | None = None,
        **params: Unpack[ChatParams],
    ) -> ChatCompletion: ...

    def chat(
        self,
        prompt: Prompt | None = None,
        /,
        *,
        output: Any = None,
        messages: Sequence[MessageLike] | None = None,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cache: CacheMode | None = None,
        **params: Unpack[ChatParams],
    ) -> ChatCompletion:
        """Send a chat completion and return the whole result (see ``Client.chat``;
        with ``output=``, a ``StructuredCompletion`` whose ``output`` is the object)."""
        client, runner = self._start()
        chat: Any = client.chat  # every overload at once
        coro = chat(
            prompt,
            output=output,
            messages=messages,
            model=model,
            headers=headers,
            timeout=timeout,
            cache=cache,
            **params,
        )
        completion: ChatCompletion = runner.call(coro)
        return completion

    def extract(self, prompt: Prompt, output: Any, /, **call: Any) -> Any:
        """The reply decoded into ``output`` (see ``Client.extract``)."""
        client, runner = self._start()
        return runner.call(client.extract(prompt, output, **call))

    def run_tools(self, prompt: Prompt, /, tools: Sequence[Any], **options: Any) -> ToolRun:
        """Run the tool loop (see ``Client.run_tools``); async tools run on the
        client's loop, plain ones in threads."""
        client, runner = self._start()
        run: ToolRun = runner.call(client.run_tools(prompt, tools, **options))
        return run

    def stream(
        self,
        prompt: Prompt | None = None,
        /,
        *,
        messages: Sequence[MessageLike] | None = None,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cache: CacheMode | None = None,
        **params: Unpack[ChatParams],
    ) -> SyncChatStream:
        """Stream a chat completion: ``with client.stream(...) as s: for text in
        s.text_deltas():`` (see ``Client.stream``)."""
        client, _ = self._start()
        open_stream: Any = client.stream  # both of its overloads at once
        stream: ChatStream = open_stream(
            prompt,
            messages=messages,
            model=model,
            headers=headers,
            timeout=timeout,
            cache=cache,
            **params,
        )
        return SyncChatStream(self, stream)

    def embed(
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
        """Embed one text or a batch (see ``Client.embed``)."""
        client, runner = self._start()
        coro = client.embed(
            input,
            model=model,
            dimensions=dimensions,
            encoding_format=encoding_format,
            user=user,
            extra_body=extra_body,
            headers=headers,
            timeout=timeout,
            cache=cache,
        )
        return runner.call(coro)

    def count_tokens(
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
        """The input tokens of a prompt (see
        [`Client.count_tokens`][llmfast.Client.count_tokens])."""
        client, runner = self._start()
        coro = client.count_tokens(
            prompt,
            messages=messages,
            model=model,
            method=method,
            headers=headers,
            timeout=timeout,
            **params,
        )
        return runner.call(coro)

    def warmup(self, connections: int = 8) -> int:
        """Open up to ``connections`` connections now; returns how many were opened."""
        client, runner = self._start()
        return runner.call(client.warmup(connections))

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
    ) -> SyncBatch: ...

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
    ) -> SyncBatch: ...

    def map(self, requests: Iterable[Any] | AsyncIterable[Any], /, **options: Any) -> SyncBatch:
        """Run a batch with [`Client.map`][llmfast.Client.map]'s arguments (``via="batch"``:
        through the provider's batch API); iterate the returned
        [`SyncBatch`][llmfast.sync.SyncBatch] for the results, or ``list(...)`` it. The input is
        read on the client's loop thread."""
        client, _ = self._start()
        batch: Batch | ProviderBatch = client.map(requests, **options)
        return SyncBatch(self, batch)

    def __repr__(self) -> str:
        client: Client | None = self._state.get("client")
        if self.closed:
            return "<SyncClient closed>"
        return f"<SyncClient {client!r}>" if client is not None else "<SyncClient not started>"
