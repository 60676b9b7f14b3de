"""The batch runner behind ``client.map(...)``: many chat requests, bounded concurrency,
results in order, failures captured, a progress bar and a resumable checkpoint.

::

    async with client.map(prompts, concurrency=32, checkpoint="run.jsonl") as batch:
        async for result in batch:            # input order (ordered=False: as they finish)
            print(result.index, result.text if result.ok else result.error)

    results = await client.map(prompts)       # or everything at once, as a list

The input is read lazily, so it may be a generator over millions of items: at most
``concurrency`` requests run at once, and in ordered mode at most ``4 * concurrency``
items are started ahead of the oldest one not yet handed out (out-of-order completions
wait in that window). Failures that every item would share stop the batch with
``BatchAbortedError`` (see ``llmfast.batch.abort``).
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Mapping, Sized
from typing import TYPE_CHECKING, Any

from llmfast.batch.abort import AbortPolicy
from llmfast.batch.base import BatchRun, open_bar, progress_wanted
from llmfast.batch.items import BatchItem, to_chat_request
from llmfast.batch.result import BatchResult
from llmfast.checkpoint import Checkpoint, ErrorInfo, Record, request_hash
from llmfast.errors import BatchAbortedError, ClientClosedError, ConfigurationError
from llmfast.types import ChatRequest

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from llmfast.client import ChatParams, Client

__all__ = ["ORDERED_WINDOW", "Batch", "BatchResult", "run_batch"]

ORDERED_WINDOW = 4
"""In ordered mode, how many times ``concurrency`` items may be started ahead of the
oldest item not yet handed out."""

_END: Any = object()


class _Stop(Exception):
    """Raised inside the runner to stop it (after cleaning up) for ``BatchAbortedError``."""

    def __init__(self, error: Exception, reason: str) -> None:
        self.error = error
        self.reason = reason


class Batch(BatchRun):
    """A batch of chat requests, run when iterated (``async for``) or awaited (a list).

    Args:
        client: the client whose layers (retry, rate limit, cache...) every call goes through.
        requests: any iterable or async iterable of ``BatchItem``, read lazily.
        concurrency: the most requests in flight at once.
        ordered: hand results out in input order (default) or as they finish.
        stop_on_error: raise the first item's error (after recording it) and cancel the
            rest, instead of capturing it as that item's result.
        abort_on_systematic: stop with [`BatchAbortedError`][llmfast.errors.BatchAbortedError]
            when the failures say every item would fail the same way: a rejected key, a
            model or permission missing before any success, the same connection or
            server error on the first items in a row, a circuit that stays open (see
            ``llmfast.batch.abort``). ``False`` records every item's failure instead.
        checkpoint: a JSON Lines file recording every finished item. Re-running with
            the same file skips the items that succeeded (their results are handed out
            again, with ``resumed=True``) and runs the rest, failed ones included.
        fsync: make each record durable before its result is handed out (see
            ``llmfast.checkpoint.Checkpoint``).
        progress: show a ``tqdm`` progress bar (done, failed, rate, tokens). ``None``
            (default): when ``tqdm`` is installed and stderr is a terminal or a notebook.
        total: the number of items, for the progress bar (default: ``len(requests)``
            when it has one).
        model: the default model for every item that is not a ``ChatRequest``.
        **params: defaults for every item that is not a ``ChatRequest``
            (``client.chat`` keywords such as ``max_tokens``); a dict item overrides them.

    Use ``async with`` when you may stop early: leaving the block cancels the calls in
    flight. A ``Batch`` runs once.
    """

    def __init__(
        self,
        client: Client,
        requests: Iterable[BatchItem] | AsyncIterable[BatchItem],
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
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigurationError(f"concurrency must be an integer >= 1, got {concurrency!r}")
        if isinstance(requests, (str, bytes, Mapping, ChatRequest)):
            raise ConfigurationError("requests must be an iterable of items, not a single item")
        super().__init__()
        self._client = client
        self._requests = requests
        self.concurrency = concurrency
        self.ordered = ordered
        self.stop_on_error = stop_on_error
        self.abort_on_systematic = abort_on_systematic
        self.checkpoint = None if checkpoint is None else os.fspath(checkpoint)
        self.fsync = fsync
        self.progress = progress_wanted(progress)
        if total is None and isinstance(requests, Sized):
            total = len(requests)
        self.total = total
        self._defaults: dict[str, Any] = {"model": model or client.model, **params}
        self.aborted: BatchAbortedError | None = None
        """Why the batch stopped by itself, when it did."""

    async def _run(self) -> AsyncGenerator[BatchResult, None]:
        concurrency, ordered = self.concurrency, self.ordered
        window = concurrency * ORDERED_WINDOW if ordered else concurrency
        checkpoint = None
        if self.checkpoint is not None:
            checkpoint = Checkpoint(self.checkpoint, fsync=self.fsync)
            checkpoint.open()
        bar = open_bar(self.total, checkpoint.succeeded if checkpoint else 0, self.progress)
        requests = self._requests
        sync_source = None if isinstance(requests, AsyncIterable) else iter(requests)
        async_source = None if sync_source is not None else aiter(requests)  # type: ignore[arg-type]
        running: set[asyncio.Task[BatchResult]] = set()
        finished: deque[asyncio.Task[BatchResult]] = deque()  # done, not yet looked at
        wakeup = asyncio.Event()
        waiting: dict[int, BatchResult] = {}  # ordered: finished, not yet their turn
        ready: deque[BatchResult] = deque()  # unordered: finished, not yet handed out
        policy = AbortPolicy() if self.abort_on_systematic else None

        def on_done(task: asyncio.Task[BatchResult]) -> None:
            finished.append(task)
            wakeup.set()

        def deliver(result: BatchResult) -> None:
            if ordered:
                waiting[result.index] = result
            else:
                ready.append(result)

        started = handed_out = 0
        exhausted = False
        stop: _Stop | None = None
        try:
            while True:
                while (
                    not exhausted and len(running) < concurrency and started - handed_out < window
                ):
                    if sync_source is not None:
                        item = next(sync_source, _END)
                    else:
                        item = await anext(async_source, _END)  # type: ignore[arg-type]
                    if item is _END:
                        exhausted = True
                        break
                    index, started = started, started + 1
                    request = to_chat_request(item, self._defaults, index)
                    key = request_hash(request)
                    record = None if checkpoint is None else checkpoint.find(index, key)
                    if record is not None and record.completion is not None:
                        self.resumed += 1
                        deliver(BatchResult(index, key, request, record.completion, resumed=True))
                    else:
                        call = self._one(index, request, key, checkpoint, bar)
                        task = asyncio.ensure_future(call)
                        task.add_done_callback(on_done)
                        running.add(task)
                if ordered:
                    while handed_out in waiting:
                        handed_out += 1
                        yield waiting.pop(handed_out - 1)
                else:
                    while ready:
                        handed_out += 1
                        yield ready.popleft()
                if not running:
                    if exhausted and not waiting and not ready:
                        return
                    continue
                if not finished:
                    wakeup.clear()
                    await wakeup.wait()
                while finished:
                    task = finished.popleft()
                    running.discard(task)
                    result = task.result()
                    error = result.error
                    if error is not None:
                        if self.stop_on_error:
                            raise error
                        reason = None if policy is None else policy.failed(error)
                        if reason is not None:
                            raise _Stop(error, reason)
                    elif policy is not None:
                        policy.succeeded()
                    deliver(result)
        except _Stop as caught:
            stop = caught
        finally:
            left = running.union(finished)
            for task in left:
                task.cancel()
            if left:  # also retrieves the exceptions of tasks that failed meanwhile
                await asyncio.gather(*left, return_exceptions=True)
            if checkpoint is not None:
                await checkpoint.close()
            if bar is not None:
                bar.close()
        if stop is not None:
            raise self._abort(stop.error, stop.reason) from stop.error

    async def _one(
        self, index: int, request: ChatRequest, key: str, checkpoint: Checkpoint | None, bar: Any
    ) -> BatchResult:
        try:
            completion = await self._client.chat(request)
        except ClientClosedError:
            raise
        except Exception as exc:
            if hasattr(exc, "add_note"):
                exc.add_note(f"batch item {index}")
            result = BatchResult(index, key, request, error=exc)
            record = Record(index, key, error=ErrorInfo.of(exc))
        else:
            result = BatchResult(index, key, request, completion)
            record = Record(index, key, completion=completion)
        if checkpoint is not None:
            checkpoint.write(record)
        self._count(result, bar)  # counted once recorded, even if cancelled while syncing
        if checkpoint is not None:
            await checkpoint.sync()
        return result

    def _abort(self, cause: Exception, reason: str) -> BatchAbortedError:
        self.aborted = BatchAbortedError(
            cause,
            reason,
            done=self.succeeded + self.resumed,
            failed=self.failed,
            total=self.total,
            checkpoint=self.checkpoint,
        )
        return self.aborted

    def _count(self, result: BatchResult, bar: Any) -> None:
        self._tally(result.completion)
        if bar is not None:
            bar.set_postfix_str(f"failed={self.failed} tokens={self.tokens:,}", refresh=False)
            bar.update(1)

    def __repr__(self) -> str:
        return (
            f"<Batch concurrency={self.concurrency} succeeded={self.succeeded} "
            f"failed={self.failed} resumed={self.resumed}>"
        )


run_batch = Batch
"""Run ``client.chat`` over every item: [`Batch`][llmfast.Batch] under another name."""
