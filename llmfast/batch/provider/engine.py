"""The submit / poll / collect engine behind ``client.map(..., via="batch")``.

One coordinator task reads the input (lazily), spools each request, and packs the
items that need running into request files on disk, sealed at the provider's limits;
each sealed file becomes a batch (journal intent first, see ``journal``) watched by a
task of its own that polls it with backoff and, once it ended, streams its results into
the checkpoint. Items that expired or were cancelled go into new batches, or, after
``fallback_after``, through the online API. Results reach the consumer through
``deliver`` (see ``batch.ProviderBatch``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from llmfast.batch.items import to_chat_request
from llmfast.batch.provider.api import BatchState, ItemResult, ProviderAPI
from llmfast.batch.provider.journal import Entry, Journal
from llmfast.batch.provider.spool import AnyRequest, Spool
from llmfast.checkpoint import Checkpoint, CheckpointError, request_hash
from llmfast.errors import (
    APIStatusError,
    AuthenticationError,
    LLMFastError,
    PermissionDeniedError,
    TransportError,
)
from llmfast.transport import Request
from llmfast.types import ChatCompletion, ChatRequest, EmbeddingRequest

if TYPE_CHECKING:
    from llmfast.batch.provider.batch import ProviderBatchOptions
    from llmfast.client import Client

__all__ = ["BATCH_TIER", "CRASH_ENV", "Engine"]

CRASH_ENV = "LLMFAST_BATCH_CRASH"
"""For crash tests: ``point:n`` kills the process (SIGKILL) the ``n``-th time it reaches
``point`` (``upload``: after the intent, before uploading; ``create``: after the create
call answered, before its id is recorded; ``poll``; ``download``: after a result is
recorded)."""
_CRASH = os.environ.get(CRASH_ENV, "")
_counts: dict[str, int] = {}
Deliver = Callable[[int, str, AnyRequest, Any, "Exception | None", bool], None]
"""``deliver(index, hash, request, completion, error, resumed)``: an item is final."""
_FATAL = (AuthenticationError, PermissionDeniedError)
BATCH_TIER = "batch"
"""The ``service_tier`` of a completion that came from a provider batch (billed at the
batch price)."""


def crash_point(point: str) -> None:
    """Kill this process here when ``$LLMFAST_BATCH_CRASH`` names this point and count."""
    if not _CRASH:
        return
    name, _, nth = _CRASH.partition(":")
    if name == point:
        _counts[point] = _counts.get(point, 0) + 1
        if _counts[point] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)


class Engine:
    """Runs one provider-batch job; see the module docstring."""

    def __init__(
        self,
        client: Client,
        api: ProviderAPI,
        requests: Iterable[Any] | AsyncIterable[Any],
        defaults: dict[str, Any],
        checkpoint: Checkpoint,
        journal: Journal,
        workdir: str,
        options: ProviderBatchOptions,
        deliver: Deliver,
        drain: Callable[[], Awaitable[None]],
    ) -> None:
        self.client, self.api, self.options = client, api, options
        self.requests, self.defaults = requests, defaults
        self.checkpoint, self.journal, self.workdir = checkpoint, journal, workdir
        self.deliver, self.drain = deliver, drain
        self.spool = Spool(workdir)
        self.state = bytearray()  # per item: 0 unseen, 1 held by a batch, 2 final, 3 resumed
        self.count = 0  # items read from the input so far
        self.input_read = asyncio.Event()
        self.states: dict[str, BatchState] = {}  # the provider's latest word per batch
        self.created = 0
        """Batches this run created."""
        self._again: list[int] = []
        self._watchers: set[asyncio.Task[None]] = set()
        self._room = asyncio.Condition()
        self._in_flight = 0
        self._changed = asyncio.Event()
        self._deadline = None
        if options.fallback_after is not None:
            self._deadline = time.monotonic() + options.fallback_after
        self._online: set[asyncio.Task[None]] = set()
        self._online_room = asyncio.Semaphore(options.online_concurrency)

    # --- the coordinator -------------------------------------------------------------

    async def run(self) -> None:
        """Submit everything, watch every batch, until every item is final."""
        try:
            for entry in self.journal.open_entries():
                for index in entry.items():
                    self._mark(index, 1)
                self._watch(entry, counted=False)  # submitted already: not held to the limit
            await self._read_input()
            self.input_read.set()
            while True:
                if self._again:
                    again, self._again = self._again, []
                    await self._submit_indices(again)
                    continue
                if not self._watchers and not self._online:
                    return
                self._changed.clear()
                await self._changed.wait()
                for task in [*self._watchers, *self._online]:
                    if task.done():
                        self._watchers.discard(task)
                        self._online.discard(task)
                        task.result()  # a watcher's failure stops the job
        finally:
            tasks = [*self._watchers, *self._online]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _mark(self, index: int, value: int) -> None:
        state = self.state
        if index >= len(state):
            state.extend(bytes(index + 1 - len(state) + len(state) // 2))
        state[index] = value

    async def _read_input(self) -> None:
        requests = self.requests
        items: Any = requests if isinstance(requests, AsyncIterable) else _aiter(requests)
        packer = _Packer(self)
        try:
            await self._pack_input(items, packer)
        finally:
            packer.discard()

    async def _pack_input(self, items: Any, packer: _Packer) -> None:
        index = 0
        async for item in items:
            request: AnyRequest
            if type(item) is EmbeddingRequest:
                request, key = item, request_hash(item)
            else:
                request = to_chat_request(item, self.defaults, index)
                key = request_hash(request)
            self.spool.add(index, key, request)
            self.count = index + 1
            if self.checkpoint.has_success(index):
                self.checkpoint.find(index, key)  # raises when the input changed
                self._mark(index, 3)  # resumed: final before this run
                self.deliver(index, key, request, None, None, True)
                await self.drain()
            elif index >= len(self.state) or self.state[index] == 0:
                self._mark(index, 1)
                await packer.add(index, key, request)
            index += 1
        await packer.seal()

    async def _submit_indices(self, indices: list[int]) -> None:
        if self._deadline is not None and time.monotonic() >= self._deadline:
            for index in indices:
                self._go_online(index)
            return
        packer = _Packer(self)
        try:
            for index in sorted(indices):
                key, request = self.spool.get(index)
                await packer.add(index, key, request)
            await packer.seal()
        finally:
            packer.discard()

    # --- one batch ---------------------------------------------------------------------

    async def submit(self, path: str, entry: Entry, embeddings: bool) -> None:
        """Record the intent, then upload and create; a watcher takes it from there."""
        async with self._room:
            await self._room.wait_for(lambda: self._in_flight < self.api.limits.max_in_flight)
            self._in_flight += 1
        await asyncio.to_thread(self.journal.intent, entry)
        crash_point("upload")
        try:
            batch_id = await self._create(path, entry, embeddings)
        except APIStatusError as exc:
            if isinstance(exc, _FATAL) or exc.status == 429 or exc.status >= 500:
                raise
            os.unlink(path)
            for index in entry.items():  # the provider refused the batch: each item fails
                self._final(index, exc)
            self.journal.ended(entry.key, "rejected")
            await self._release()
            return
        crash_point("create")
        await asyncio.to_thread(self.journal.created, entry.key, batch_id)
        self.created += 1
        os.unlink(path)
        self._watch(entry)

    async def _create(self, path: str, entry: Entry, embeddings: bool) -> str:
        """Create the batch; after an ambiguous failure (the create may have happened),
        look it up by its key before trying again."""
        for attempt in range(5):
            try:
                return await self.api.submit(path, entry.key, embeddings)
            except (TransportError, APIStatusError) as exc:
                if isinstance(exc, APIStatusError) and exc.status < 500 and exc.status != 429:
                    raise
                if attempt == 4:
                    raise
                await asyncio.sleep(_wait(exc, self.options.poll_interval * 2**attempt))
                found = await self.api.find(entry.key, entry.count, entry.at, self._known())
                if found is not None:
                    return found
        raise AssertionError("unreachable")  # pragma: no cover

    def _known(self) -> set[str]:
        return {e.id for e in self.journal.entries.values() if e.id is not None}

    def _watch(self, entry: Entry, counted: bool = True) -> None:
        task = asyncio.ensure_future(self._watcher(entry, counted))
        task.add_done_callback(lambda _: self._changed.set())
        self._watchers.add(task)

    async def _release(self) -> None:
        async with self._room:
            self._in_flight -= 1
            self._room.notify_all()

    async def _watcher(self, entry: Entry, counted: bool) -> None:
        try:
            if entry.id is None:  # killed between intent and the id's record: look it up
                found = await self._polling(
                    lambda: self.api.find(entry.key, entry.count, entry.at, self._known())
                )
                if found is None:  # never created: its items go again
                    self.journal.ended(entry.key, "lost")
                    self._again.extend(entry.items())
                    return
                self.journal.created(entry.key, found)
            assert entry.id is not None
            state = await self._poll(entry)
            if not counted:  # re-attached: its items' requests are spooled as the input is read
                await self.input_read.wait()
            await self._collect(entry, state)
        finally:
            if counted:
                await self._release()
            self._changed.set()

    async def _poll(self, entry: Entry) -> BatchState:
        batch_id = entry.id
        assert batch_id is not None
        interval = self.options.poll_interval
        cancelled = False
        while True:
            state: BatchState = await self._polling(lambda: self.api.state(batch_id))
            self.states[batch_id] = state
            crash_point("poll")
            if state.ended:
                return state
            if self._deadline is not None and not cancelled and time.monotonic() >= self._deadline:
                await self._polling(lambda: self.api.cancel(batch_id))
                cancelled = True
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, self.options.max_poll_interval)

    async def _polling(self, call: Callable[[], Any]) -> Any:
        """``call()``, again after a 429, a 5xx or a network error (waiting as told)."""
        delay = self.options.poll_interval
        for attempt in range(self.options.poll_retries):
            try:
                return await call()
            except (TransportError, APIStatusError) as exc:
                if isinstance(exc, APIStatusError) and exc.status < 500 and exc.status != 429:
                    raise
                if attempt == self.options.poll_retries - 1:
                    raise
                await asyncio.sleep(_wait(exc, delay))
                delay = min(delay * 2, self.options.max_poll_interval)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _collect(self, entry: Entry, state: BatchState) -> None:
        prefix = entry.key + "-"
        if state.failure is not None:
            error = self.client.backend.status_error(  # type: ignore[attr-defined]
                400, {"error": {"message": state.failure, "type": "invalid_request_error"}}, {}
            )
            for index in entry.items():
                self._final(index, error)
        else:
            lookup = _Lookup(self.spool, prefix)
            for attempt in range(self.options.poll_retries):
                try:
                    async for item in self.api.results(state, lookup):
                        self._result(prefix, item)
                        await self.drain()
                    break
                except TransportError:  # a dropped download: read it again (done items skip)
                    if attempt == self.options.poll_retries - 1:
                        raise
                    await asyncio.sleep(self.options.poll_interval)
                except _NotOurs:  # re-attached by a lookup to someone else's batch
                    break  # its items, none recorded, go again below
        await self.checkpoint.sync()
        missing = [i for i in entry.items() if self.state[i] == 1]
        self.journal.ended(entry.key, state.status)
        if missing:
            if self._deadline is not None and time.monotonic() >= self._deadline:
                for index in missing:
                    self._go_online(index)
            else:
                self._again.extend(missing)

    def _result(self, prefix: str, item: ItemResult) -> None:
        custom_id = item.custom_id
        if not custom_id.startswith(prefix):
            raise _NotOurs(custom_id)
        index_text, _, short = custom_id[len(prefix) :].partition("-")
        index = int(index_text)
        if index >= len(self.state) or self.state[index] != 1:
            return  # recorded before a dropped download or a crash: once only
        key = self.spool.get(index)[0]
        if not key.startswith(short):
            raise CheckpointError(
                f"item {index} is not the request submitted for it (the input changed)"
            )
        if item.again:
            return
        self._final(index, item.error, item.value)
        crash_point("download")

    def _final(self, index: int, error: Exception | None, value: Any = None) -> None:
        key, request = self.spool.get(index)
        if type(value) is ChatCompletion:
            value.service_tier = BATCH_TIER  # the batch price applies (see docs)
            if value.usage is not None:
                value.usage.batch = True  # what llmfast.prices bills at the batch rate
        self._mark(index, 2)
        self.deliver(index, key, request, value, error, False)

    def _go_online(self, index: int) -> None:
        task = asyncio.ensure_future(self._online_one(index))
        task.add_done_callback(lambda _: self._changed.set())
        self._online.add(task)

    async def _online_one(self, index: int) -> None:
        key, request = self.spool.get(index)
        async with self._online_room:
            try:
                if type(request) is ChatRequest:
                    value: Any = await self.client.chat(request)
                else:
                    value = await self.client.send(Request(request))
                    value = await value.collect()
            except LLMFastError as exc:
                self._mark(index, 2)
                self.deliver(index, key, request, None, exc, False)
                return
        self._mark(index, 2)
        self.deliver(index, key, request, value, None, False)

    def new_entry(self, ranges: list[tuple[int, int]], count: int) -> Entry:
        """A fresh batch entry (its key random: 12 hex digits)."""
        return Entry(secrets.token_hex(6), self.api.name, ranges, count, time.time())


class _NotOurs(Exception):
    """A result whose ``custom_id`` does not carry the batch's key."""


class _Packer:
    """Writes items into request files, sealing one at the provider's limits."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.limits = engine.api.limits
        self.file: Any = None
        self.path = ""
        self.entry: Entry | None = None
        self.size = 0
        self.kind: type | None = None

    async def add(self, index: int, key: str, request: AnyRequest) -> None:
        api, limits = self.engine.api, self.limits
        if self.entry is not None and self.kind is not type(request):
            await self.seal()  # a batch runs one endpoint
        if self.entry is None:
            self.entry = self.engine.new_entry([], 0)
            self.path = os.path.join(self.engine.workdir, f"{self.entry.key}.jsonl")
            self.file = open(self.path, "wb")  # noqa: SIM115, ASYNC230 - closed in seal()
            self.file.write(api.head)
            self.size, self.kind = len(api.head) + len(api.tail), type(request)
        entry = self.entry
        line = api.line(f"{entry.key}-{index}-{key[:8]}", request)
        extra = len(line) + (len(api.separator) if entry.count else 0)
        if entry.count and self.size + extra > limits.max_bytes:
            await self.seal()
            await self.add(index, key, request)
            return
        if entry.count:
            self.file.write(api.separator)
        self.file.write(line)
        self.size += extra
        ranges = entry.ranges
        if ranges and ranges[-1][1] == index:
            ranges[-1] = (ranges[-1][0], index + 1)
        else:
            ranges.append((index, index + 1))
        entry.count += 1
        if entry.count >= limits.max_requests:
            await self.seal()

    def discard(self) -> None:
        """Drop a request file not sealed (the job is failing)."""
        if self.entry is not None:
            self.entry = None
            self.file.close()
            os.unlink(self.path)

    async def seal(self) -> None:
        entry = self.entry
        if entry is None:
            return
        self.file.write(self.engine.api.tail)
        self.file.close()
        self.entry = None
        await self.engine.submit(self.path, entry, self.kind is EmbeddingRequest)


class _Lookup:
    """``custom_id`` -> request, read from the spool (for decoding embeddings)."""

    def __init__(self, spool: Spool, prefix: str) -> None:
        self.spool, self.prefix = spool, prefix

    def get(self, custom_id: str) -> Any:
        index = custom_id[len(self.prefix) :].partition("-")[0]
        try:
            return self.spool.get(int(index))[1]
        except (ValueError, IndexError):
            return None


def _wait(exc: Exception, default: float) -> float:
    after = exc.retry_after if isinstance(exc, APIStatusError) else None
    return default if after is None else max(after, 0.0)


async def _aiter(items: Iterable[Any]) -> Any:
    for item in items:
        yield item
