"""The mock's OpenAI files (``/v1/files``: upload, retrieve, content, delete), kept on
disk in a temporary directory and read and written in pieces; part of
[`BatchAPI`][llmfast.testing.batch_api.BatchAPI]."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from aiohttp import web

from . import _payloads as p
from ._batch_shapes import OPENAI_SHAPE, Shape

__all__ = ["FileStore", "error", "json_response"]

_ENCODE = p.ENCODER.encode
_READ = 1 << 16


class FileStore:
    """Files by id, in a temporary directory; ``drops``: downloads still to cut off."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.dir = tempfile.mkdtemp(prefix="llmfast-batches-")
        self.ids = itertools.count(1)
        """Ids for files and batches alike."""
        self.files: dict[str, tuple[str, str, int]] = {}  # id -> (path, purpose, bytes)
        self.drops = 0

    def close(self) -> None:
        """Delete the stored files."""
        shutil.rmtree(self.dir, ignore_errors=True)

    async def handle(
        self, request: web.BaseRequest, method: str, rest: list[str]
    ) -> web.StreamResponse:
        """Answer one request under ``/v1/files`` (``rest``: the path after it)."""
        if method == "POST" and not rest:
            return await self._upload(request)
        info = self.files.get(rest[0]) if rest else None
        if info is None:
            return error(404, "No such File object", OPENAI_SHAPE)
        if method == "GET" and rest[1:] == ["content"]:
            return await self.download(request, info[0], "application/jsonl")
        if method == "GET" and len(rest) == 1:
            return json_response(self.object(rest[0]))
        if method == "DELETE" and len(rest) == 1:
            path = self.files.pop(rest[0])[0]
            os.unlink(path)
            return json_response({"id": rest[0], "object": "file", "deleted": True})
        return error(404, f"Invalid URL ({method} {request.path})", OPENAI_SHAPE)

    async def _upload(self, request: web.BaseRequest) -> web.StreamResponse:
        reader = await request.multipart()
        purpose, path, size = None, None, 0
        while (part := await reader.next()) is not None:
            name = getattr(part, "name", None)
            if name == "purpose":
                purpose = (await part.read()).decode()  # type: ignore[union-attr]
            elif name == "file":
                file_id = f"file-mock{next(self.ids)}"
                path = os.path.join(self.dir, file_id)
                with open(path, "wb") as out:  # noqa: ASYNC230 - a test server
                    while chunk := await part.read_chunk(_READ):  # type: ignore[union-attr]
                        out.write(chunk)
                        size += len(chunk)
        if purpose != "batch" or path is None:
            if path is not None:
                os.unlink(path)
            return error(400, "a batch upload needs purpose=batch and a file", OPENAI_SHAPE)
        file_id = os.path.basename(path)
        self.files[file_id] = (path, purpose, size)
        return json_response(self.object(file_id))

    def object(self, file_id: str) -> dict[str, Any]:
        """The file's OpenAI ``file`` object."""
        _, purpose, size = self.files[file_id]
        return {
            "id": file_id,
            "object": "file",
            "bytes": size,
            "created_at": int(self.now()),
            "filename": f"{file_id}.jsonl",
            "purpose": purpose,
        }

    async def download(
        self, request: web.BaseRequest, path: str, content_type: str
    ) -> web.StreamResponse:
        """Send the file at ``path`` (cut off halfway when a drop is due)."""
        size = os.path.getsize(path)  # noqa: ASYNC240 - a test server
        drop = self.drops > 0
        self.drops -= drop
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.content_length = size
        await response.prepare(request)
        sent = 0
        with open(path, "rb") as file:  # noqa: ASYNC230 - a test server
            while chunk := file.read(_READ):
                if drop and sent + len(chunk) >= size // 2:
                    await response.write(chunk[: max(size // 2 - sent, 0)])
                    from .server import _abort

                    return _abort(request)
                await response.write(chunk)
                sent += len(chunk)
        await response.write_eof()
        return response


def json_response(data: Any, status: int = 200) -> web.Response:
    """``data`` as a JSON answer."""
    return web.Response(status=status, body=_ENCODE(data), content_type="application/json")


def error(status: int, message: str, shape: Shape, retry_after: str | None = None) -> web.Response:
    """The provider's error body for ``status``."""
    headers = None if retry_after is None else {"retry-after": retry_after}
    body = shape.fmt.error_body(status, p.error_spec(message))
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)
