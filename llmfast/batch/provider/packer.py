"""Request files: items written one line each into a file on disk, sealed (and handed
to the engine to submit) at the provider's limits of requests and bytes."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from llmfast.batch.provider.journal import Entry
from llmfast.batch.provider.spool import AnyRequest, Spool
from llmfast.types import EmbeddingRequest

if TYPE_CHECKING:
    from llmfast.batch.provider.engine import Engine

__all__ = ["Packer", "SpoolLookup"]


class Packer:
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
        """Write item ``index``; a full file is sealed first (or after it)."""
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
        """Close the file being written, and submit it as a batch."""
        entry = self.entry
        if entry is None:
            return
        self.file.write(self.engine.api.tail)
        self.file.close()
        self.entry = None
        await self.engine.submit(self.path, entry, self.kind is EmbeddingRequest)


class SpoolLookup:
    """``custom_id`` -> request, read from the spool (for decoding embeddings)."""

    def __init__(self, spool: Spool, prefix: str) -> None:
        self.spool, self.prefix = spool, prefix

    def get(self, custom_id: str) -> Any:
        """The request of ``custom_id`` (``None`` when it names no spooled item)."""
        index = custom_id[len(self.prefix) :].partition("-")[0]
        try:
            return self.spool.get(int(index))[1]
        except (ValueError, IndexError):
            return None
