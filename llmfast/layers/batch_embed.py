"""Embedding micro-batching: concurrent single-text ``embed()`` calls share one request.

A single-text embedding request waits up to ``window`` seconds for others with the
same parameters (model, dimensions, encoding format, user, ``extra_body`` and
headers); then, or as soon as ``max_inputs`` distinct texts are waiting, they go
upstream as one request with a list input. Identical texts in a batch are sent once.
Each caller gets an ``EmbeddingResponse`` holding its own vector (at index 0, with
``usage=None``: a batch's token count cannot be split exactly). An upstream error
reaches exactly the callers of that batch. Calls with a list input, and calls with
``request.context["batch"] = "bypass"``, go straight through.

Put it inside the cache and coalescing layers and outside retry, so a whole batch is
retried as one request. It adds up to ``window`` seconds of latency to a lone call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import msgspec

from llmfast.errors import ClientClosedError, ConfigurationError, DeadlineExceeded, DecodeError
from llmfast.transport import Request, Response, Transport, TransportLayer
from llmfast.types import Embedding, EmbeddingRequest, EmbeddingResponse

__all__ = ["BatchEmbed", "BatchEmbedLayer"]

_encode_group = msgspec.json.Encoder(order="sorted").encode
_replace = msgspec.structs.replace
_Future = asyncio.Future[tuple[list[float], str]]
"""A caller's share of a batch: its vector and the model that made it."""


class BatchEmbed:
    """Configuration of embedding micro-batching; ``BatchEmbed(...)(inner)`` builds the layer.

    Args:
        window: seconds the first call of a batch waits for others (e.g. 0.002).
        max_inputs: a batch is sent as soon as it holds this many distinct texts.
    """

    def __init__(self, *, window: float = 0.002, max_inputs: int = 256) -> None:
        if not window >= 0:
            raise ConfigurationError("window must be >= 0")
        if max_inputs < 1:
            raise ConfigurationError("max_inputs must be at least 1")
        self.window = window
        self.max_inputs = max_inputs

    def __call__(self, inner: Transport) -> BatchEmbedLayer:
        return BatchEmbedLayer(inner, self)

    def __repr__(self) -> str:
        return f"BatchEmbed(window={self.window}, max_inputs={self.max_inputs})"


class _Batch:
    """The callers waiting for one upstream request, by text."""

    __slots__ = ("deadline", "request", "task", "timer", "waiters")

    def __init__(self, request: Request) -> None:
        self.request = request  # the first caller's: parameters, headers, hook
        self.deadline = request.deadline
        self.waiters: dict[str, list[_Future]] = {}
        self.timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[None] | None = None

    def add(self, text: str, deadline: float | None) -> _Future:
        if self.deadline is not None:  # the batch may run until its last caller's deadline
            self.deadline = None if deadline is None else max(self.deadline, deadline)
        future: _Future = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(text, []).append(future)
        return future

    def futures(self) -> Iterable[_Future]:
        for futures in self.waiters.values():
            yield from futures

    def fail(self, error: BaseException) -> None:
        for future in self.futures():
            if not future.done():
                future.set_exception(error)


class BatchEmbedLayer(TransportLayer):
    """Merges concurrent single-text embedding calls (see the module docstring)."""

    def __init__(self, inner: Transport, config: BatchEmbed) -> None:
        super().__init__(inner)
        self._window = config.window
        self._max_inputs = config.max_inputs
        self._open: dict[bytes, _Batch] = {}
        self._running: set[_Batch] = set()

    async def send(self, request: Request, /) -> Response:
        body = request.body
        context = request.context
        if (
            type(body) is not EmbeddingRequest
            or type(body.input) is not str
            or (context is not None and context.get("batch") == "bypass")
        ):
            return await self.inner.send(request)
        headers = None if request.headers is None else dict(request.headers)
        group = _encode_group((_replace(body, input=""), headers))
        batch = self._open.get(group)
        if batch is None:
            batch = self._open[group] = _Batch(request)
            batch.timer = asyncio.get_running_loop().call_later(
                self._window, self._flush, group, batch
            )
        future = batch.add(body.input, request.deadline)
        if len(batch.waiters) >= self._max_inputs:
            self._flush(group, batch)
        try:
            vector, model = await _wait(future, request.deadline)
        except BaseException:
            await self._abandon(group, batch, body.input, future)
            raise
        data = [Embedding(embedding=vector, index=0)]
        return Response(request, result=EmbeddingResponse(data=data, model=model or body.model))

    def _flush(self, group: bytes, batch: _Batch) -> None:
        if self._open.get(group) is batch:
            del self._open[group]
        if batch.timer is not None:
            batch.timer.cancel()
        if batch.task is None:
            self._running.add(batch)
            batch.task = asyncio.get_running_loop().create_task(self._run(batch))

    async def _run(self, batch: _Batch) -> None:
        try:
            texts = list(batch.waiters)
            first = batch.request
            assert isinstance(first.body, EmbeddingRequest)
            request = Request(
                _replace(first.body, input=texts),
                headers=first.headers,
                deadline=batch.deadline,
                on_event=first.on_event,
            )
            response = await self.inner.send(request)
            result: EmbeddingResponse = await response.collect()
            vectors = result.vectors
            if len(vectors) != len(texts):
                raise DecodeError(f"asked for {len(texts)} embeddings, got {len(vectors)}")
            model = result.model
            for text, vector in zip(texts, vectors, strict=True):
                for copy, future in enumerate(batch.waiters[text]):
                    if not future.done():
                        future.set_result((vector if copy == 0 else list(vector), model))
        except Exception as exc:
            batch.fail(exc)
        finally:
            self._running.discard(batch)
            batch.fail(ClientClosedError("the batched embedding call was cancelled"))

    async def _abandon(self, group: bytes, batch: _Batch, text: str, future: _Future) -> None:
        """A caller left: drop its text from a batch not yet sent, or cancel a batch
        whose callers have all left."""
        future.cancel()
        task = batch.task
        if task is None:
            futures = batch.waiters.get(text)
            if futures is not None and future in futures:
                futures.remove(future)
                if not futures:
                    del batch.waiters[text]
            if not batch.waiters:
                if self._open.get(group) is batch:
                    del self._open[group]
                if batch.timer is not None:
                    batch.timer.cancel()
        elif not task.done() and all(f.done() for f in batch.futures()):
            task.cancel()
            await asyncio.wait([task])

    async def aclose(self) -> None:
        """Fail the calls still waiting with ``ClientClosedError``, then close."""
        error = ClientClosedError("the client was closed")
        for batch in self._open.values():
            if batch.timer is not None:
                batch.timer.cancel()
            batch.fail(error)
        self._open.clear()
        tasks = [batch.task for batch in self._running if batch.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await self.inner.aclose()


async def _wait(future: asyncio.Future[Any], deadline: float | None) -> Any:
    if deadline is None:
        return await future
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise DeadlineExceeded("the call's deadline passed while waiting for its batch")
    try:
        return await asyncio.wait_for(future, remaining)
    except asyncio.TimeoutError:
        raise DeadlineExceeded("the call's deadline passed while waiting for its batch") from None
