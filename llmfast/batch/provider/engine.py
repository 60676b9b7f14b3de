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
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from llmfast.batch.items import to_chat_request
from llmfast.batch.provider.api import BatchState, ItemResult, ProviderAPI
from llmfast.batch.provider.crash import CRASH_ENV, crash_point
from llmfast.batch.provider.journal import Entry, Journal
from llmfast.batch.provider.online import Online
from llmfast.batch.provider.packer import Packer, SpoolLookup
from llmfast.batch.provider.report import report
from llmfast.batch.provider.spool import AnyRequest, Spool
from llmfast.checkpoint import Checkpoint, CheckpointError, request_hash
from llmfast.errors import (
    APIStatusError,
    AuthenticationError,
    PermissionDeniedError,
    TransportError,
)
from llmfast.transport import Request
from llmfast.types import ChatCompletion, EmbeddingRequest

if TYPE_CHECKING:
    from llmfast.batch.provider.batch import ProviderBatchOptions
    from llmfast.client import Client

__all__ = ["BATCH_TIER", "CRASH_ENV", "Engine", "crash_point"]

Deliver = Callable[[int, str, AnyRequest, Any, "Exception | None", bool], None]
"""``deliver(index, hash, request, completion, error, resumed)``: an item is final."""
_FATAL = (AuthenticationError, PermissionDeniedError)
BATCH_TIER = "batch"
"""The ``service_tier`` of a completion that came from a provider batch (billed at the
batch price)."""


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
        self._online = Online(
            client, self.spool, options.online_concurrency, self._settle, self._changed
        )
        self._hook = client.on_event  # each item's `done` event (Stats, OTel), if any

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
                online = self._online.tasks
                if not self._watchers and not online:
                    return
                self._changed.clear()
                await self._changed.wait()
                for task in [*self._watchers, *online]:
                    if task.done():
                        self._watchers.discard(task)
                        online.discard(task)
                        task.result()  # a watcher's failure stops the job
        finally:
            tasks = [*self._watchers, *self._online.tasks]
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
        packer = Packer(self)
        try:
            await self._pack_input(items, packer)
        finally:
            packer.discard()

    async def _pack_input(self, items: Any, packer: Packer) -> None:
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
                self._online.send(index)
            return
        packer = Packer(self)
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
            lookup = SpoolLookup(self.spool, prefix)
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
                    self._online.send(index)
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
        """A result from the provider: marked as billed at the batch price, reported."""
        key, request = self.spool.get(index)
        if type(value) is ChatCompletion:
            value.service_tier = BATCH_TIER  # the batch price applies (see docs)
        if value is not None and value.usage is not None:
            value.usage.batch = True  # what llmfast.prices bills at the batch rate
        if self._hook is not None:
            report(self._hook, Request(request), value, error)
        self._mark(index, 2)
        self.deliver(index, key, request, value, error, False)

    def _settle(self, index: int, value: Any, error: Exception | None) -> None:
        """A result of the online fallback (reported by the client's own call)."""
        key, request = self.spool.get(index)
        self._mark(index, 2)
        self.deliver(index, key, request, value, error, False)

    def new_entry(self, ranges: list[tuple[int, int]], count: int) -> Entry:
        """A fresh batch entry (its key random: 12 hex digits)."""
        return Entry(secrets.token_hex(6), self.api.name, ranges, count, time.time())


class _NotOurs(Exception):
    """A result whose ``custom_id`` does not carry the batch's key."""


def _wait(exc: Exception, default: float) -> float:
    after = exc.retry_after if isinstance(exc, APIStatusError) else None
    return default if after is None else max(after, 0.0)


async def _aiter(items: Iterable[Any]) -> Any:
    for item in items:
        yield item
