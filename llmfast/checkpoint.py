"""The batch checkpoint: an append-only JSON Lines log of finished items.

One line per finished item::

    {"index": 7, "hash": "9f2c...", "completion": {...}}
    {"index": 8, "hash": "41ab...", "error": {"type": "RateLimitError", "message": "..."}}

A record is written with one ``os.write`` and made durable (``fsync``, shared by every
record written meanwhile: a group commit) before the batch hands the result out, so a
crash or ``kill -9`` at any moment loses no finished item. Opening the file finds the
records already there; a half-written last line (a write cut short by the crash) is
ignored and truncated away before anything is appended, and so is a tail of NUL bytes
(what a power cut leaves when the file's size reached the disk but its data did not),
with any torn record before it; any other line that is not a record (a corrupt line
with whole records after it, a foreign file) raises ``CheckpointError`` and leaves the
file untouched, so pointing a batch at the wrong file never damages it. Only an index's position in
the file is kept in memory (16 bytes per index), so resuming a million-item batch stays
small; a record is read back when its item comes up again.
"""

from __future__ import annotations

import asyncio
import os
from array import array
from typing import Any

import msgspec

from llmfast.errors import APIStatusError, ConfigurationError
from llmfast.layers.keys import request_key
from llmfast.redact import redact_text
from llmfast.transport import Request
from llmfast.types import ChatCompletion, ChatRequest, EmbeddingRequest, EmbeddingResponse

__all__ = ["Checkpoint", "CheckpointError", "ErrorInfo", "Record", "request_hash"]


def request_hash(request: ChatRequest | EmbeddingRequest) -> str:
    """A stable hash of the request: the cache's canonical key
    (``llmfast.layers.keys.request_key``) of a plain, non-streaming call, without the
    backend's identity, so the same checkpoint works through a proxy or a new port."""
    return request_key(Request(request))


class CheckpointError(ConfigurationError):
    """The checkpoint file does not belong to this batch (the input changed), is
    corrupt, or is in use by another process."""


class ErrorInfo(msgspec.Struct, omit_defaults=True):
    """How a failed item's error is recorded."""

    type: str
    message: str
    status: int | None = None

    @classmethod
    def of(cls, exc: BaseException) -> ErrorInfo:
        status = exc.status if isinstance(exc, APIStatusError) else None
        return cls(type(exc).__name__, redact_text(str(exc)), status)


class Record(msgspec.Struct, omit_defaults=True):
    """One finished item: a ``completion`` (``embeddings`` for an embeddings request of
    a provider batch) or an ``error``."""

    index: int
    hash: str
    completion: ChatCompletion | None = None
    error: ErrorInfo | None = None
    embeddings: EmbeddingResponse | None = None


class _Head(msgspec.Struct):
    """What loading needs from a line; the completion is skipped, not decoded."""

    index: int
    hash: str
    completion: msgspec.Raw = msgspec.Raw()  # empty when the line has none
    embeddings: msgspec.Raw = msgspec.Raw()


_RECORD_START = b'{"index":'
_ENCODER = msgspec.json.Encoder()
_RECORD_DECODER = msgspec.json.Decoder(Record)
_HEAD_DECODER = msgspec.json.Decoder(_Head)


class Checkpoint:
    """An open checkpoint file. ``open()`` it, ``find``/``write``/``sync``, then ``close()``.

    Args:
        path: the JSON Lines file (created if missing).
        fsync: make every record durable with ``fsync`` before it is reported (the
            default). ``False`` still writes each record to the OS at once, which
            survives a crash or ``kill -9`` of the process but not a power loss.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = os.fspath(path)
        self.fsync = fsync
        self.succeeded = 0
        """How many items the file already held a success for when it was opened."""
        self._fd = -1
        self._reader: Any = None
        self._offsets = array("q")
        self._lengths = array("q")
        self._end = 0
        self._written = 0
        self._synced = 0
        self._sync_task: asyncio.Future[None] | None = None

    def open(self) -> None:
        """Open (or create) the file, lock it, index its records, drop a torn tail."""
        created = not os.path.exists(self.path)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            _lock(fd, self.path)
            self._reader = open(self.path, "rb")  # noqa: SIM115 - closed in close()
            end = self._index()
            if end < os.fstat(fd).st_size:
                os.ftruncate(fd, end)
            self._end = end
            if created and self.fsync:
                _fsync_directory(self.path)
        except BaseException:
            os.close(fd)
            if self._reader is not None:
                self._reader.close()
            raise
        self._fd = fd

    def _index(self) -> int:
        """Index every complete record; return where the good part of the file ends."""
        offsets, lengths = self._offsets, self._lengths
        good_end = offset = 0
        for number, line in enumerate(self._reader, 1):
            start, offset = offset, offset + len(line)
            head = _head(line)
            if head is None:
                if self._damaged_tail(line, number):
                    break  # dropped: truncated before anything is appended
                raise CheckpointError(f"{self.path}: line {number} is not a checkpoint record")
            good_end = offset
            index = head.index
            if index < 0:
                raise CheckpointError(f"{self.path}: line {number} has a negative index")
            if index >= len(offsets):
                grow = index + 1 - len(offsets)
                offsets.extend(array("q", [-1]) * grow)
                lengths.extend(array("q", [0]) * grow)
            elif offsets[index] >= 0 and lengths[index] < 0:
                continue  # a success is final; a later record for it changes nothing
            success = bool(head.completion) or bool(head.embeddings)
            self.succeeded += success
            offsets[index] = start
            lengths[index] = -len(line) if success else len(line)  # the sign marks a success
        return good_end

    def _damaged_tail(self, line: bytes, number: int) -> bool:
        """Whether ``line`` (not a whole record) starts what a crash leaves at the end of
        the file: a record cut short, maybe followed by a power cut's NUL bytes."""
        nul = line.find(b"\0")
        torn = line if nul < 0 else line[:nul]
        if not (torn.startswith(_RECORD_START) or _RECORD_START.startswith(torn)):
            return False  # not one of ours
        if nul < 0:  # a write cut short, if it is the last line (no newline)
            return not line.endswith(b"\n")
        for later, rest in enumerate(self._reader, number + 1):
            if _head(rest) is not None:
                raise CheckpointError(
                    f"{self.path}: line {number} is damaged (NUL bytes) but whole records "
                    f"follow it (line {later}): the file is corrupt in the middle"
                )
        return True

    def find(self, index: int, request_hash: str) -> Record | None:
        """The record for ``index``, or ``None``; raises ``CheckpointError`` when it was
        written for a different request."""
        if index >= len(self._offsets) or self._offsets[index] < 0:
            return None
        self._reader.seek(self._offsets[index])
        try:
            record = _RECORD_DECODER.decode(self._reader.read(abs(self._lengths[index])))
        except msgspec.DecodeError as exc:
            raise CheckpointError(
                f"{self.path}: the record of item {index} is corrupt: {exc}"
            ) from None
        if record.hash != request_hash:
            raise CheckpointError(
                f"{self.path}: item {index} is not the request this checkpoint recorded for it "
                "(the input changed); use a new checkpoint file or delete this one"
            )
        return record

    def has_success(self, index: int) -> bool:
        """Whether a success is recorded for ``index`` (nothing is read)."""
        return index < len(self._offsets) and self._offsets[index] >= 0 and self._lengths[index] < 0

    def write(self, record: Record) -> None:
        """Append one record (written to the OS at once; see ``sync()``); ``find`` sees it."""
        data = _ENCODER.encode(record) + b"\n"
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self._written += 1
        success = record.completion is not None or record.embeddings is not None
        self._note(record.index, len(data), success)

    def _note(self, index: int, length: int, success: bool) -> None:
        """Index a record just appended at the end of the file (a success stays final)."""
        start, self._end = self._end, self._end + length
        offsets, lengths = self._offsets, self._lengths
        if index >= len(offsets):
            grow = index + 1 - len(offsets)
            offsets.extend(array("q", [-1]) * grow)
            lengths.extend(array("q", [0]) * grow)
        elif offsets[index] >= 0 and lengths[index] < 0:
            return
        offsets[index] = start
        lengths[index] = -length if success else length

    async def sync(self) -> None:
        """Return once every record written so far is durable (one ``fsync`` in a
        worker thread serves every record written while it runs)."""
        if not self.fsync:
            return
        target = self._written
        while self._synced < target:
            task = self._sync_task
            if task is None:
                task = self._sync_task = asyncio.ensure_future(self._fsync())
            await asyncio.shield(task)

    async def _fsync(self) -> None:
        written = self._written
        try:
            await asyncio.to_thread(os.fsync, self._fd)
            self._synced = written
        finally:
            self._sync_task = None

    async def close(self) -> None:
        """Finish a pending ``fsync`` and close the file; safe to call more than once."""
        task = self._sync_task
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def _head(line: bytes) -> _Head | None:
    """The head of a whole record line, or ``None`` (a record never holds a raw NUL:
    JSON escapes it)."""
    if not line.endswith(b"\n") or b"\0" in line:
        return None
    try:
        return _HEAD_DECODER.decode(line)
    except msgspec.DecodeError:
        return None


def _lock(fd: int, path: str) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory lock
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise CheckpointError(f"{path} is in use by another batch") from None


def _fsync_directory(path: str) -> None:
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:  # Windows cannot open a directory
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
