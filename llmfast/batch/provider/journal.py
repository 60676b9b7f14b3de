"""The batch journal: which provider batches a run created and which items each holds,
an append-only JSON Lines file beside the checkpoint (``CHECKPOINT.batches``).

Why it cannot submit anything twice: before a batch is uploaded or created, an
``intent`` names the items it will hold and a fresh key, made durable (``fsync``). The
key travels with the batch (OpenAI: ``metadata``; both: every ``custom_id`` starts with
it). Once the provider has answered the create call, ``created`` records the batch id;
once every result of the batch is in the checkpoint, ``ended`` closes the intent. A run
killed at any point leaves one of: an intent alone (the batch may or may not exist: the
resumed run looks it up by its key and re-attaches, or submits the items once more under
a new intent if the provider never heard of it), an intent with an id (re-attached), or
an ended intent (its results are in the checkpoint). An item is only ever placed in a
new intent when no open intent holds it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import msgspec

from llmfast.checkpoint import CheckpointError

__all__ = ["Entry", "Journal"]

Ranges = list[tuple[int, int]]


class _Intent(msgspec.Struct, tag="intent"):
    key: str
    provider: str
    ranges: Ranges
    count: int
    at: float


class _Created(msgspec.Struct, tag="created"):
    key: str
    id: str


class _Ended(msgspec.Struct, tag="ended"):
    key: str
    status: str = ""


_Rec = _Intent | _Created | _Ended
_ENCODE = msgspec.json.Encoder().encode
_DECODE = msgspec.json.Decoder(_Rec).decode


@dataclass(slots=True)
class Entry:
    """One batch of the run: its key, items (``[start, end)`` ranges), provider id."""

    key: str
    provider: str
    ranges: Ranges
    count: int
    at: float
    id: str | None = None
    ended: bool = False
    status: str = ""

    def items(self) -> Iterator[int]:
        """The item indices the batch holds."""
        for start, end in self.ranges:
            yield from range(start, end)


class Journal:
    """The open journal of one checkpoint (``open()``, then ``intent``/``created``/``ended``)."""

    def __init__(self, path: str, *, fsync: bool = True) -> None:
        self.path = path
        self.fsync = fsync
        self.entries: dict[str, Entry] = {}
        self._fd = -1

    def open(self) -> None:
        """Read the records there (a torn last line is dropped) and open for appending."""
        good = self.load()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        if os.fstat(self._fd).st_size > good:
            os.ftruncate(self._fd, good)

    def load(self) -> int:
        """Read the records there, changing nothing; returns where the whole ones end."""
        good = 0
        if os.path.exists(self.path):
            with open(self.path, "rb") as file:
                for number, line in enumerate(file, 1):
                    if not line.endswith(b"\n"):
                        break  # a write cut short by a crash
                    try:
                        self._apply(_DECODE(line))
                    except msgspec.DecodeError:
                        raise CheckpointError(
                            f"{self.path}: line {number} is not a batch journal record"
                        ) from None
                    good += len(line)
        return good

    def _apply(self, rec: _Rec) -> None:
        if type(rec) is _Intent:
            self.entries[rec.key] = Entry(rec.key, rec.provider, rec.ranges, rec.count, rec.at)
        elif type(rec) is _Created:
            self.entries[rec.key].id = rec.id
        else:
            assert isinstance(rec, _Ended)
            entry = self.entries[rec.key]
            entry.ended, entry.status = True, rec.status

    def open_entries(self) -> list[Entry]:
        """The batches not ended yet (to re-attach)."""
        return [e for e in self.entries.values() if not e.ended]

    def intent(self, entry: Entry) -> None:
        """Record a batch about to be submitted (durable on return)."""
        self.entries[entry.key] = entry
        self._write(_Intent(entry.key, entry.provider, entry.ranges, entry.count, entry.at))

    def created(self, key: str, batch_id: str) -> None:
        """Record the provider's id for ``key`` (durable on return)."""
        self.entries[key].id = batch_id
        self._write(_Created(key, batch_id))

    def ended(self, key: str, status: str) -> None:
        """Record that every result of ``key`` is in the checkpoint."""
        entry = self.entries[key]
        entry.ended, entry.status = True, status
        self._write(_Ended(key, status))

    def _write(self, rec: _Rec) -> None:
        data = memoryview(_ENCODE(rec) + b"\n")
        while data:
            data = data[os.write(self._fd, data) :]
        if self.fsync:
            os.fsync(self._fd)  # a few records per batch: cheap enough in the loop

    def close(self) -> None:
        """Close the file; safe twice."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
