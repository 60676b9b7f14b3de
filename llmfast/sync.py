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

import asyncio
import concurrent.futures
import os
import threading
import weakref
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, overload

from llmfast import _serving
from llmfast.client import Client, Prompt
from llmfast.errors import ClientClosedError
from llmfast.stream import ChatStream
from llmfast.transport import Response
from llmfast.types import ChatCompletion, ChatCompletionChunk, EmbeddingResponse, MessageLike

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from llmfast.batch import Batch, BatchItem, BatchResult
    from llmfast.client import ChatParams
    from llmfast.layers.cache import CacheMode
    from llmfast.stats import StatsSnapshot
    from llmfast.structured.call import Output, StructuredCompletion
    from llmfast.structured.loop import ToolRun

__all__ = ["SyncBatch", "SyncChatStream", "SyncClient"]

T = TypeVar("T")
_END: Any = object()


class _LoopThread:
    """An event loop running forever on a daemon thread, until ``stop()``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.leftover_tasks = 0
        """How many tasks were still pending when the loop stopped (cancelled then)."""
        self.stopping = False
        self.local_ports: tuple[int, ...] = ()
        """Ports on this machine the client calls (checked for a deadlock)."""
        self._accepting = True
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="llmfast-sync-loop", daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, T], *, closing: bool = False) -> T:
        """Run ``coro`` on the loop and wait for its result in the calling thread
        (``closing``: it needs no server, so it cannot deadlock)."""
        if self.local_ports and not closing:
            caller = asyncio._get_running_loop()
            if caller is not None and caller is not self.loop:
                port = _serving.served_by(caller, self.local_ports)
                if port is not None:
                    coro.close()
                    raise RuntimeError(_deadlock_message(port))
        with self._lock:
            if not self._accepting or threading.current_thread() is self.thread:
                coro.close()
                if self._accepting:
                    raise RuntimeError("a SyncClient cannot be called from its own event loop")
                raise ClientClosedError("the client is closed; create a new SyncClient")
            future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            if self.stopping:
                raise ClientClosedError("the client was closed during the call") from None
            raise
        except BaseException:
            future.cancel()  # e.g. KeyboardInterrupt while waiting: cancel the call too
            raise

    def _run(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            with self._lock:
                self._accepting = False
            loop.run_until_complete(asyncio.sleep(0))  # calls already submitted get a task
            tasks = asyncio.all_tasks(loop)
            self.leftover_tasks = len(tasks)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            asyncio.set_event_loop(None)
            loop.close()

    def stop(self) -> None:
        """Stop the loop and wait for its thread (unless called from that thread)."""
        with self._lock:
            if self.stopping:
                return
            self.stopping = True
            self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.current_thread() is not self.thread:
            self.thread.join()


def _deadlock_message(port: int) -> str:
    return (
        f"this SyncClient call would wait forever: the server on port {port} is run by the "
        "event loop of this very thread, which cannot answer while the thread waits. "
        "Use the async llmfast.Client with `await` here, or run the server on a thread "
        "of its own: `with MockServer.in_thread() as server:`"
    )


def _local_ports(client: Client) -> tuple[int, ...]:
    port = _serving.loopback_target(getattr(client.backend, "base_url", None))
    return () if port is None else (port,)


def _shutdown(state: dict[str, Any]) -> None:
    """Close the client and stop the loop; runs from ``close()`` or at garbage collection
    or interpreter exit (so it must not refer to the ``SyncClient``)."""
    state["closed"] = True
    runner: _LoopThread | None = state.pop("runner", None)
    if runner is None:
        return
    client: Client | None = state.pop("client", None)
    if client is None:
        runner.stop()
    elif threading.current_thread() is runner.thread:  # collected on the loop itself
        closing = runner.loop.create_task(client.aclose())
        closing.add_done_callback(lambda _: runner.stop())
    else:
        try:
            runner.call(client.aclose(), closing=True)
        finally:
            runner.stop()


class SyncClient:
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
        self._finalizer = weakref.finalize(self, _shutdown, self._state)

    # --- lifecycle -------------------------------------------------------------------

    def _start(self) -> tuple[Client, _LoopThread]:
        with self._lock:
            if self._state["closed"]:
                raise ClientClosedError("the client is closed; create a new SyncClient")
            runner: _LoopThread | None = self._state.get("runner")
            if runner is None:
                runner = self._state["runner"] = _LoopThread()
                try:
                    client = runner.call(self._make_client())
                except BaseException:
                    self._state.pop("runner")
                    runner.stop()
                    raise
                self._state["client"] = client
                runner.local_ports = _local_ports(client)
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

    def __enter__(self) -> SyncClient:
        if self.closed:
            raise ClientClosedError("the client is closed; create a new SyncClient")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

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

    def warmup(self, connections: int = 8) -> int:
        """Open up to ``connections`` connections now; returns how many were opened."""
        client, runner = self._start()
        return runner.call(client.warmup(connections))

    def map(
        self,
        requests: Iterable[BatchItem] | AsyncIterable[BatchItem],
        /,
        *,
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
    ) -> SyncBatch:
        """Run a batch (see [`llmfast.batch.Batch`][llmfast.Batch]); iterate the returned
        [`SyncBatch`][llmfast.sync.SyncBatch] for the results, or ``list(...)`` it. The input is
        read on the client's loop thread."""
        from llmfast.batch import Batch  # imported on first use: keeps `import llmfast` fast

        client, _ = self._start()
        batch = Batch(
            client,
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
        return SyncBatch(self, batch)

    def __repr__(self) -> str:
        client: Client | None = self._state.get("client")
        if self.closed:
            return "<SyncClient closed>"
        return f"<SyncClient {client!r}>" if client is not None else "<SyncClient not started>"


async def _next(iterator: AsyncIterator[T]) -> T:
    """The next item or ``_END``; awaited on the loop, so async generators are
    registered with that loop's hooks."""
    try:
        return await iterator.__anext__()
    except StopAsyncIteration:
        return _END  # type: ignore[no-any-return]


async def _aclose(iterator: AsyncIterator[Any] | None, closer: Any) -> None:
    try:
        if iterator is not None:
            await iterator.aclose()  # type: ignore[attr-defined]
    finally:
        await closer()


class SyncChatStream:
    """A streamed chat completion, read from a plain thread.

    Iterate it for typed chunks, or ``text_deltas()`` for text. Use it as a context
    manager, or just iterate it: the stream is closed when the iteration ends, raises,
    or is abandoned (``break``). After the end, ``completion`` is the result.
    """

    def __init__(self, owner: SyncClient, stream: ChatStream) -> None:
        self._owner = owner
        self._stream = stream
        self._iterator: AsyncIterator[ChatCompletionChunk] | None = None
        self._started = False
        self._closed = False

    def __enter__(self) -> SyncChatStream:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Send the request and wait for the response headers (done by ``with``)."""
        if not self._started:
            self._started = True
            self._owner._run(self._stream.start())

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        self.start()
        iterator = self._iterator = self._stream.__aiter__()
        try:
            while True:
                chunk = self._owner._run(_next(iterator))
                if chunk is _END:
                    return
                yield chunk
        finally:
            self.close()

    def text_deltas(self) -> Iterator[str]:
        """The text of choice 0 as it arrives, one fragment at a time."""
        for chunk in self:
            for choice in chunk.choices:
                if choice.index == 0:
                    text = choice.delta.content
                    if text:
                        yield text

    def collect(self) -> ChatCompletion:
        """Read what is left of the stream and return the accumulated completion."""
        if self._iterator is None:
            for _ in self:
                pass
        return self.completion

    @property
    def completion(self) -> ChatCompletion:
        """The accumulated completion, once the stream has been read to the end."""
        return self._stream.completion

    @property
    def chunks(self) -> list[ChatCompletionChunk]:
        """Every chunk received so far."""
        return self._stream.chunks

    @property
    def response(self) -> Response:
        """The underlying ``Response`` (status and headers)."""
        return self._stream.response

    def close(self) -> None:
        """Release the connection; safe to call more than once, and after the client
        was closed."""
        if self._closed:
            return
        self._closed = True
        if self._owner.closed:
            return
        self._owner._run(_aclose(self._iterator, self._stream.aclose), closing=True)

    def __repr__(self) -> str:
        return f"<SyncChatStream {self._stream!r}>"


class SyncBatch:
    """A running batch, read from a plain thread: iterate it for
    [`BatchResult`][llmfast.BatchResult] s.

    Use it as a context manager (or iterate it to the end, or ``list()`` it) so that
    stopping early cancels the calls in flight; finished items stay in the checkpoint.
    """

    def __init__(self, owner: SyncClient, batch: Batch) -> None:
        self._owner = owner
        self.batch = batch
        """The async [`Batch`][llmfast.Batch], with its counters (``succeeded``, ``failed``...)."""

    def __enter__(self) -> SyncBatch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[BatchResult]:
        iterator = self.batch.__aiter__()
        try:
            while True:
                result = self._owner._run(_next(iterator))
                if result is _END:
                    return
                yield result
        finally:
            self.close()

    def close(self) -> None:
        """Cancel the calls in flight and close the checkpoint; safe to call twice."""
        if not self._owner.closed:
            self._owner._run(self.batch.aclose(), closing=True)

    def __repr__(self) -> str:
        return f"<SyncBatch {self.batch!r}>"
