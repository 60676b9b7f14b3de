"""Provider batch APIs on [MockServer][llmfast.testing.MockServer]: OpenAI's files and
batches (``/v1/files``, ``/v1/batches``) and Anthropic's Message Batches
(``/v1/messages/batches``), reached as ``server.batches``.

Each item of a batch is answered by the server's normal reply machinery (the next
enqueued [`Reply`][llmfast.testing.Reply], else the default echo; an ``error`` reply
makes that item fail), when the batch's time is up. Time is the API's own clock
(``time.time() + offset``): ``processing_time`` says how long a batch takes,
[`advance`][llmfast.testing.batch_api.BatchAPI.advance] moves the clock on, so no test
waits. Files live in a temporary directory, written and read in pieces.

Faults: ``fail_validation(n)`` (the next ``n`` batches fail validation: OpenAI
``failed``, Anthropic a 400 on create), ``expire(n, keep=k)`` (the next ``n`` batches
expire after ``k`` items), ``rate_limit_polls(n)`` (the next ``n`` retrievals get a 429
with ``retry-after``), ``drop_downloads(n)`` (the next ``n`` downloads are cut off
halfway). Counters: ``created`` (batches created), ``submissions`` (times each
``custom_id`` was in a created batch), ``polls``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from . import _payloads as p
from ._batch_files import FileStore, error, json_response
from ._batch_items import answer_item
from ._batch_shapes import ANTHROPIC_SHAPE, OPENAI_SHAPE, Shape

if TYPE_CHECKING:
    from .server import MockServer

__all__ = ["BATCH_PREFIXES", "BatchAPI", "StoredBatch"]

BATCH_PREFIXES = ("/v1/files", "/v1/batches", "/v1/messages/batches")
_DECODE = msgspec.json.Decoder().decode
_ENCODE = p.ENCODER.encode
_READ = 1 << 16


@dataclasses.dataclass
class StoredBatch:
    """One batch as the server keeps it."""

    id: str
    shape: Shape
    input_path: str
    created_at: float
    endpoint: str = ""
    input_file_id: str = ""
    metadata: dict[str, Any] | None = None
    custom_ids: list[str] = dataclasses.field(default_factory=list)
    status: str = "validating"  # OpenAI's names; Anthropic's derived from them
    failed_validation: bool = False
    keep: int | None = None  # expire after this many items
    cancelling_at: float | None = None
    ended_at: float | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: Counter[str] = dataclasses.field(default_factory=Counter)


class BatchAPI:
    """The batches of one [MockServer][llmfast.testing.MockServer] (``server.batches``)."""

    def __init__(self, server: MockServer) -> None:
        self._server = server
        self._store = FileStore(self.now)
        self._ids = self._store.ids
        self._dir = self._store.dir
        self.files = self._store.files
        """The stored files: id -> (path, purpose, bytes)."""
        self.batches: dict[str, StoredBatch] = {}
        self.offset = 0.0
        """Seconds added to ``time.time()``: the API's clock (see ``advance``)."""
        self.processing_time = 0.0
        """Seconds (of the API's clock) a batch takes from creation to its end."""
        self.max_requests = 50_000
        """The most requests a batch may hold (OpenAI 50,000; a batch over fails)."""
        self.created = 0
        """Batches created."""
        self.submissions: Counter[str] = Counter()
        """How many created batches held each ``custom_id``."""
        self.polls = 0
        """Batch retrievals answered (429s included)."""
        self._polled = asyncio.Event()
        self._fail_validation = 0
        self._expire: list[int] = []
        self._rate_limited = 0

    # -- controls --------------------------------------------------------------------

    def now(self) -> float:
        """The API's clock."""
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the API's clock on by ``seconds``."""
        self.offset += seconds

    def fail_validation(self, n: int = 1) -> None:
        """The next ``n`` batches fail validation."""
        self._fail_validation += n

    def expire(self, n: int = 1, *, keep: int = 0) -> None:
        """The next ``n`` batches expire after answering ``keep`` items each."""
        self._expire.extend([keep] * n)

    def rate_limit_polls(self, n: int = 1) -> None:
        """The next ``n`` batch retrievals answer 429 (``retry-after: 0``)."""
        self._rate_limited += n

    def drop_downloads(self, n: int = 1) -> None:
        """The next ``n`` file-content / results downloads are cut off halfway."""
        self._store.drops += n

    async def wait_polls(self, n: int, timeout: float = 5.0) -> None:
        """Return once ``polls >= n``; raise ``TimeoutError`` after ``timeout`` seconds."""

        async def reach() -> None:
            while self.polls < n:
                self._polled.clear()
                await self._polled.wait()

        try:
            await asyncio.wait_for(reach(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"{self.polls} polls, not {n}, within {timeout} s") from None

    def items_submitted(self) -> Counter[int]:
        """How many created batches held each item, by the item index in its
        ``custom_id`` (llmfast's ``KEY-INDEX-HASH``)."""
        counts: Counter[int] = Counter()
        for custom_id, times in self.submissions.items():
            counts[int(custom_id.split("-")[1])] += times
        return counts

    def close(self) -> None:
        """Delete the stored files."""
        self._store.close()

    # -- dispatch --------------------------------------------------------------------

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Answer one request under ``BATCH_PREFIXES``."""
        method = request.method
        parts = request.path.strip("/").split("/")  # v1 files|batches|messages ...
        if parts[1] == "messages":
            return await self._anthropic(request, method, parts[3:])
        if parts[1] == "files":
            return await self._store.handle(request, method, parts[2:])
        return await self._openai(request, method, parts[2:])

    # -- OpenAI batches ----------------------------------------------------------------

    async def _openai(
        self, request: web.BaseRequest, method: str, rest: list[str]
    ) -> web.StreamResponse:
        shape = OPENAI_SHAPE
        if method == "POST" and not rest:
            body = _DECODE(await request.read())
            info = self.files.get(body.get("input_file_id", ""))
            if info is None:
                return error(400, "input_file_id is not an uploaded file", shape)
            batch = self._create(shape, info[0], body.get("metadata"))
            batch.endpoint, batch.input_file_id = body.get("endpoint", ""), body["input_file_id"]
            return json_response(shape.batch_object(self._advance(batch), self.now()))
        if method == "GET" and not rest:
            return json_response(self._list(request, shape, "after"))
        return await self._one(request, method, rest, shape)

    async def _one(
        self, request: web.BaseRequest, method: str, rest: list[str], shape: Shape
    ) -> web.StreamResponse:
        batch = self.batches.get(rest[0]) if rest else None
        if batch is None or batch.shape is not shape:
            return error(404, "No such batch", shape)
        if method == "GET" and len(rest) == 1:
            self.polls += 1
            self._polled.set()
            if self._rate_limited:
                self._rate_limited -= 1
                return error(429, "Rate limit reached for batch retrievals", shape, "0")
            return json_response(shape.batch_object(self._advance(batch), self.now()))
        if method == "POST" and rest[1:] == ["cancel"]:
            if batch.ended_at is None:
                batch.cancelling_at = self.now()
                batch.status = "cancelling"
            return json_response(shape.batch_object(batch, self.now()))
        if method == "GET" and rest[1:] == ["results"]:
            self._advance(batch)
            if batch.output_file_id is None:
                return error(400, "the batch is still processing", shape)
            path = self.files[batch.output_file_id][0]
            return await self._store.download(request, path, "application/x-jsonl")
        return error(404, f"Invalid URL ({method} {request.path})", shape)

    def _list(self, request: web.BaseRequest, shape: Shape, cursor: str) -> dict[str, Any]:
        limit = int(request.query.get("limit", "20"))
        after = request.query.get(cursor + ("_id" if shape is ANTHROPIC_SHAPE else ""))
        ordered = [b for b in reversed(self.batches.values()) if b.shape is shape]  # newest first
        if after is not None:
            ids = [b.id for b in ordered]
            ordered = ordered[ids.index(after) + 1 :] if after in ids else []
        page = ordered[:limit]
        data = [shape.batch_object(self._advance(b), self.now()) for b in page]
        return {
            **({"object": "list"} if shape is OPENAI_SHAPE else {}),
            "data": data,
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
            "has_more": len(ordered) > limit,
        }

    # -- Anthropic message batches ----------------------------------------------------

    async def _anthropic(
        self, request: web.BaseRequest, method: str, rest: list[str]
    ) -> web.StreamResponse:
        shape = ANTHROPIC_SHAPE
        if method == "POST" and not rest:
            path = os.path.join(self._dir, f"msgbatch-input{next(self._ids)}")
            with open(path, "wb") as out:  # noqa: ASYNC230 - a test server
                while chunk := await request.content.read(_READ):
                    out.write(chunk)
            if self._fail_validation:
                self._fail_validation -= 1
                os.unlink(path)
                return error(400, "requests: a request failed validation", shape)
            try:
                with open(path, "rb") as file:  # noqa: ASYNC230 - a test server
                    requests = _DECODE(file.read())["requests"]
            except (msgspec.DecodeError, KeyError, TypeError):
                return error(400, "the body must be {'requests': [...]}", shape)
            lines = os.path.join(self._dir, f"msgbatch-lines{next(self._ids)}")
            with open(lines, "wb") as out:  # noqa: ASYNC230 - a test server
                for item in requests:
                    out.write(_ENCODE(item) + b"\n")
            os.unlink(path)
            batch = self._create(shape, lines, None)
            return json_response(shape.batch_object(self._advance(batch), self.now()))
        if method == "GET" and not rest:
            return json_response(self._list(request, shape, "after"))
        return await self._one(request, method, rest, shape)

    # -- processing --------------------------------------------------------------------

    def _create(self, shape: Shape, input_path: str, metadata: Any) -> StoredBatch:
        prefix = "batch_mock" if shape is OPENAI_SHAPE else "msgbatch_mock"
        batch = StoredBatch(f"{prefix}{next(self._ids)}", shape, input_path, self.now())
        batch.metadata = metadata if isinstance(metadata, dict) else None
        for line in _lines(input_path):
            try:
                custom_id = _DECODE(line).get("custom_id")
            except (msgspec.DecodeError, AttributeError):
                custom_id = None
            batch.custom_ids.append(str(custom_id))
        if shape is OPENAI_SHAPE and (
            self._fail_validation or len(batch.custom_ids) > self.max_requests
        ):
            self._fail_validation -= self._fail_validation > 0
            batch.failed_validation = True
        else:
            self.submissions.update(batch.custom_ids)
        if self._expire:
            batch.keep = self._expire.pop(0)
        self.created += 1
        self.batches[batch.id] = batch
        return batch

    def _advance(self, batch: StoredBatch) -> StoredBatch:
        """Bring the batch's status up to the API's clock (runs its items when due)."""
        if batch.ended_at is not None:
            return batch
        now = self.now()
        if batch.failed_validation:
            batch.status, batch.ended_at = "failed", now
        elif batch.cancelling_at is not None:
            self._run(batch, 0, "cancelled")
        elif batch.keep is not None and now >= batch.created_at + self.processing_time:
            self._run(batch, batch.keep, "expired")
        elif now >= batch.created_at + self.processing_time:
            self._run(batch, len(batch.custom_ids), "completed")
        else:
            batch.status = "in_progress"
        return batch

    def _run(self, batch: StoredBatch, answered: int, status: str) -> None:
        shape = batch.shape
        out_id, err_id = f"file-mock{next(self._ids)}", f"file-mock{next(self._ids)}"
        out_path, err_path = os.path.join(self._dir, out_id), os.path.join(self._dir, err_id)
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            for number, line in enumerate(_lines(batch.input_path)):
                custom_id, item = shape.item_of(line)
                if number >= answered:
                    state = "expired" if status == "expired" else "canceled"
                    target = err if shape is OPENAI_SHAPE else out
                    target.write(_ENCODE(shape.unanswered(custom_id, state)) + b"\n")
                    batch.counts[state] += 1
                    continue
                code, body = answer_item(self._server, shape.fmt, item, shape.is_embed(batch))
                ok = code == 200
                target = out if ok or shape is ANTHROPIC_SHAPE else err
                target.write(_ENCODE(shape.answered(custom_id, code, body, number)) + b"\n")
                batch.counts["succeeded" if ok else "errored"] += 1
        for file_id, path in ((out_id, out_path), (err_id, err_path)):
            size = os.path.getsize(path)
            if size or (shape is ANTHROPIC_SHAPE and file_id == out_id):
                self.files[file_id] = (path, "batch_output", size)
            else:
                os.unlink(path)
        batch.output_file_id = out_id if out_id in self.files else None
        batch.error_file_id = err_id if err_id in self.files else None
        if shape is ANTHROPIC_SHAPE and batch.error_file_id is not None:
            os.unlink(self.files.pop(batch.error_file_id)[0])
            batch.error_file_id = None
        batch.status, batch.ended_at = status, self.now()


def _lines(path: str) -> Iterator[bytes]:
    with open(path, "rb") as file:
        for line in file:
            if line.strip():
                yield line
