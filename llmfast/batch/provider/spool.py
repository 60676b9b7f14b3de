"""The run's requests on disk: every item's normalized request and hash, appended as
the input is read, read back by index (8 bytes of memory per item), so that neither a
request file being built nor a result coming back needs the input in memory."""

from __future__ import annotations

import os
import tempfile
from array import array
from typing import Any

import msgspec

from llmfast.types import ChatRequest, EmbeddingRequest

AnyRequest = ChatRequest | EmbeddingRequest

__all__ = ["AnyRequest", "Spool"]


class _Spooled(msgspec.Struct, array_like=True):
    hash: str
    request: dict[str, Any]  # a ChatRequest's fields (messages come back as dicts)
    embed: bool = False  # an EmbeddingRequest's fields instead


_ENCODE = msgspec.json.Encoder().encode
_DECODE = msgspec.json.Decoder(_Spooled).decode


class Spool:
    """Requests by item index, in an unlinked temporary file in ``directory``."""

    def __init__(self, directory: str) -> None:
        self._file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - closed in close()
        self._offsets = array("q")
        self._end = 0

    def add(self, index: int, key: str, request: AnyRequest) -> None:
        """Store item ``index`` (indices come in increasing order)."""
        kind = b"]\n" if type(request) is ChatRequest else b",true]\n"
        data = b'["' + key.encode() + b'",' + _ENCODE(request) + kind
        offsets = self._offsets
        if index >= len(offsets):
            offsets.extend(array("q", [-1]) * (index + 1 - len(offsets)))
        offsets[index] = self._end
        self._file.seek(self._end)
        self._file.write(data)
        self._end += len(data)

    def get(self, index: int) -> tuple[str, AnyRequest]:
        """Item ``index``'s hash and request."""
        self._file.seek(self._offsets[index])
        spooled = _DECODE(self._file.readline())
        if spooled.embed:
            return spooled.hash, EmbeddingRequest(**spooled.request)
        return spooled.hash, ChatRequest(**spooled.request)

    def __contains__(self, index: int) -> bool:
        return index < len(self._offsets) and self._offsets[index] >= 0

    def close(self) -> None:
        """Delete the file."""
        self._file.close()

    def size(self) -> int:
        """Bytes on disk."""
        return os.fstat(self._file.fileno()).st_size
