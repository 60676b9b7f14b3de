"""``ProviderBatch``: what ``client.map(..., via="batch")`` returns — the same
``BatchResult``s as the online runner, from the provider's batch API (see ``engine``)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections import Counter, deque
from collections.abc import AsyncGenerator, AsyncIterable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmfast.batch.base import BatchRun, open_bar, progress_wanted
from llmfast.batch.provider.api import BatchLimits, BatchState, ProviderAPI
from llmfast.batch.provider.engine import Engine
from llmfast.batch.provider.journal import Journal
from llmfast.batch.provider.spool import AnyRequest
from llmfast.batch.result import BatchResult
from llmfast.checkpoint import Checkpoint, ErrorInfo, Record
from llmfast.errors import ConfigurationError, UnsupportedParameterError
from llmfast.types import ChatCompletion, EmbeddingRequest, EmbeddingResponse

if TYPE_CHECKING:
    from llmfast.batch.items import BatchItem
    from llmfast.client import Client

__all__ = ["ProviderBatch", "ProviderBatchOptions", "journal_path", "provider_api"]

_DRAIN_AT = 4096  # unordered results waiting for the consumer before collecting pauses


@dataclass(frozen=True, slots=True)
class ProviderBatchOptions:
    """How a provider batch runs.

    Attributes:
        limits: per-batch limits (default: the provider's, see ``OPENAI_LIMITS`` and
            ``ANTHROPIC_LIMITS``); smaller ones split a job into more batches.
        poll_interval: seconds between the first polls of a batch (growing by 1.5x).
        max_poll_interval: the longest wait between polls.
        poll_retries: attempts of a poll, a create or a download that failed with a
            429, a 5xx or a network error (each waits as the provider asks).
        fallback_after: seconds after which what is still pending is cancelled at the
            provider and sent through the online API (the client's layers), or ``None``.
        online_concurrency: calls in flight at once for that fallback.
    """

    limits: BatchLimits | None = None
    poll_interval: float = 30.0
    max_poll_interval: float = 300.0
    poll_retries: int = 8
    fallback_after: float | None = None
    online_concurrency: int = 16


def provider_api(backend: Any, limits: BatchLimits | None = None) -> ProviderAPI:
    """The batch API of ``backend`` (OpenAI-compatible or Anthropic); raises
    [`UnsupportedParameterError`][llmfast.errors.UnsupportedParameterError] for others."""
    kind = getattr(backend, "kind", type(backend).__name__)
    if kind == "openai":
        from llmfast.batch.provider.openai_files import OpenAIBatches

        return OpenAIBatches(backend, limits)
    if kind == "anthropic":
        from llmfast.batch.provider.anthropic_batches import AnthropicBatches

        return AnthropicBatches(backend, limits)
    raise UnsupportedParameterError(
        'via="batch"', str(kind), "provider batches need the OpenAI-compatible or Anthropic backend"
    )


def journal_path(checkpoint: str) -> str:
    """Where the batch journal of ``checkpoint`` lives."""
    return checkpoint + ".batches"


class ProviderBatch(BatchRun):
    """A batch run through the provider's batch API; iterate it or await it, like
    [`Batch`][llmfast.Batch] (same ``BatchResult``s, same checkpoint).

    ``checkpoint`` makes it resumable after a crash at any moment without submitting any
    item twice (the batch journal sits beside it: ``CHECKPOINT.batches``); without one, a
    temporary directory holds the state. Leaving early (``aclose``) leaves the provider's
    batches running: resuming with the same checkpoint re-attaches to them, and
    ``llmfast batch --cancel CHECKPOINT`` cancels them.
    """

    def __init__(
        self,
        client: Client,
        requests: Iterable[BatchItem | EmbeddingRequest]
        | AsyncIterable[BatchItem | EmbeddingRequest],
        *,
        ordered: bool = True,
        stop_on_error: bool = False,
        checkpoint: str | os.PathLike[str] | None = None,
        fsync: bool = True,
        progress: bool | None = None,
        total: int | None = None,
        model: str | None = None,
        options: ProviderBatchOptions | None = None,
        **params: Any,
    ) -> None:
        super().__init__()
        self.options = options or ProviderBatchOptions()
        self.api = provider_api(client.backend, self.options.limits)
        self._client, self._requests = client, requests
        self.ordered, self.stop_on_error, self.fsync = ordered, stop_on_error, fsync
        self.checkpoint = None if checkpoint is None else os.fspath(checkpoint)
        self.progress = progress_wanted(progress)
        self.total = total if total is not None else _len(requests)
        self._defaults: dict[str, Any] = {"model": model or client.model, **params}
        self.engine: Engine | None = None
        """The engine, while it runs (``engine.states``: the provider's word per batch)."""

    @property
    def states(self) -> dict[str, BatchState]:
        """The provider's latest word on each batch of this run."""
        return {} if self.engine is None else self.engine.states

    async def _run(self) -> AsyncGenerator[BatchResult, None]:
        scratch = None
        path = self.checkpoint
        if path is None:
            scratch = tempfile.mkdtemp(prefix="llmfast-provider-batch-")
            path = os.path.join(scratch, "checkpoint.jsonl")
        checkpoint = Checkpoint(path, fsync=self.fsync)
        checkpoint.open()
        journal = Journal(journal_path(path), fsync=self.fsync)
        workdir = path + ".batches.d"
        ready: deque[BatchResult] = deque()
        errors: dict[int, Exception] = {}
        wakeup, room = asyncio.Event(), asyncio.Event()
        ordered = self.ordered
        bar = open_bar(self.total, 0, self.progress)

        def deliver(
            index: int,
            key: str,
            request: AnyRequest,
            value: ChatCompletion | EmbeddingResponse | None,
            error: Exception | None,
            resumed: bool,
        ) -> None:
            if not resumed:
                record = _record(index, key, value)
                if error is not None:
                    if hasattr(error, "add_note"):
                        error.add_note(f"batch item {index}")
                    record.error = ErrorInfo.of(error)
                checkpoint.write(record)
                self._count(value, bar)
            else:
                self.resumed += 1
            if ordered:
                if error is not None:
                    errors[index] = error
            else:
                if resumed:
                    found = checkpoint.find(index, key)
                    value = None if found is None else found.completion or found.embeddings
                ready.append(_result(index, key, request, value, error, resumed))
            wakeup.set()

        async def drain() -> None:
            while len(ready) >= _DRAIN_AT:
                room.clear()
                await room.wait()

        try:
            journal.open()
            os.makedirs(workdir, exist_ok=True)
            engine = self.engine = Engine(
                self._client,
                self.api,
                self._requests,
                self._defaults,
                checkpoint,
                journal,
                workdir,
                self.options,
                deliver,
                drain,
            )
            task = asyncio.ensure_future(engine.run())
            task.add_done_callback(lambda _: wakeup.set())
            handed = 0
            while True:
                if ordered:
                    state = engine.state
                    while handed < engine.count and handed < len(state) and state[handed] >= 2:
                        result = self._ordered_result(engine, checkpoint, errors, handed)
                        handed += 1
                        await checkpoint.sync()
                        yield self._check(result)
                else:
                    while ready:
                        result = ready.popleft()
                        room.set()
                        await checkpoint.sync()
                        yield self._check(result)
                if task.done() and not ready:  # (in order: every item was handed out above)
                    task.result()  # the engine's failure, if it failed
                    return
                wakeup.clear()
                if not task.done() and not ready:
                    await wakeup.wait()
        finally:
            if self.engine is not None:
                if "task" in locals():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                self.engine.spool.close()
            await checkpoint.close()
            journal.close()
            if bar is not None:
                bar.close()
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
            elif os.path.isdir(workdir) and not os.listdir(workdir):  # noqa: ASYNC240
                os.rmdir(workdir)

    def _ordered_result(
        self, engine: Engine, checkpoint: Checkpoint, errors: dict[int, Exception], index: int
    ) -> BatchResult:
        key, request = engine.spool.get(index)
        error = errors.pop(index, None)
        if error is not None:
            return BatchResult(index, key, request, error=error)
        resumed = engine.state[index] == 3
        record = checkpoint.find(index, key)
        value = None if record is None else record.completion or record.embeddings
        if value is None:  # an error recorded in an earlier run of a held item
            raise ConfigurationError(f"item {index}: no result recorded")  # pragma: no cover
        return _result(index, key, request, value, None, resumed)

    def _check(self, result: BatchResult) -> BatchResult:
        if self.stop_on_error and result.error is not None:
            raise result.error
        return result

    def _count(self, value: ChatCompletion | EmbeddingResponse | None, bar: Any) -> None:
        self._tally(value)
        if bar is not None:
            if (self.succeeded + self.failed) % 256 == 1:
                bar.set_postfix_str(self._provider_counts(), refresh=False)
            bar.update(1)

    def _provider_counts(self) -> str:
        """The progress bar's postfix: this run's figures, then the provider's own counts
        over the batches still running (``in_progress=2 completed=1200 failed=3``...)."""
        running = [s for s in self.states.values() if not s.ended]
        statuses = Counter(s.status for s in running)
        counts: Counter[str] = Counter()
        for state in running:
            counts.update({k: v for k, v in state.counts.items() if isinstance(v, int)})
        shown = " ".join(f"{k}={v}" for k, v in [*statuses.items(), *counts.items()])
        return f"failed={self.failed} tokens={self.tokens:,} | {shown or 'no batch running'}"

    def __repr__(self) -> str:
        return (
            f"<ProviderBatch {self.api.name} succeeded={self.succeeded} failed={self.failed} "
            f"resumed={self.resumed}>"
        )


def _record(index: int, key: str, value: ChatCompletion | EmbeddingResponse | None) -> Record:
    if type(value) is EmbeddingResponse:
        return Record(index, key, embeddings=value)
    return Record(index, key, completion=value)  # type: ignore[arg-type]


def _result(
    index: int,
    key: str,
    request: AnyRequest,
    value: ChatCompletion | EmbeddingResponse | None,
    error: Exception | None,
    resumed: bool,
) -> BatchResult:
    if type(value) is EmbeddingResponse:
        return BatchResult(index, key, request, None, error, resumed, embeddings=value)
    return BatchResult(index, key, request, value, error, resumed)  # type: ignore[arg-type]


def _len(requests: Any) -> int | None:
    try:
        return len(requests)
    except TypeError:
        return None
