"""OpenAI's Batch API: a JSONL request file uploaded to ``/files`` (purpose ``batch``),
a batch created on ``/batches`` with the engine's key in ``metadata``, its output and
error files read line by line. See https://platform.openai.com/docs/api-reference/batch.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec

from llmfast.backends.openai import encode_request
from llmfast.batch.provider.api import BatchLimits, BatchState, Http, ItemResult, Lookup
from llmfast.errors import DecodeError, TransportError
from llmfast.pool import map_transport_error
from llmfast.types import ChatRequest, EmbeddingRequest

__all__ = ["KEY_FIELD", "OPENAI_LIMITS", "OpenAIBatches"]

OPENAI_LIMITS = BatchLimits(max_requests=50_000, max_bytes=200 * 1024 * 1024)
"""OpenAI's limits per batch: 50,000 requests, a 200 MB input file."""
KEY_FIELD = "llmfast_batch"
"""The ``metadata`` key holding the engine's idempotency marker."""
_ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
_AGAIN = frozenset({"batch_expired", "batch_cancelled"})
_Line = msgspec.json.Decoder(dict[str, Any]).decode
_CHAT, _EMBED = b'"/v1/chat/completions"', b'"/v1/embeddings"'


class OpenAIBatches:
    """The OpenAI-compatible backend's batch API."""

    name = "openai"
    head = b""
    separator = b""
    tail = b""

    def __init__(self, backend: Any, limits: BatchLimits | None = None) -> None:
        self.http = Http(backend)
        self.backend = backend
        self.limits = limits or OPENAI_LIMITS

    def line(self, custom_id: str, request: ChatRequest | EmbeddingRequest) -> bytes:
        url = _CHAT if type(request) is ChatRequest else _EMBED
        body = encode_request(request, False)
        return (
            b'{"custom_id":'
            + msgspec.json.encode(custom_id)
            + b',"method":"POST","url":'
            + url
            + b',"body":'
            + body
            + b"}\n"
        )

    async def submit(self, path: str, key: str, embeddings: bool) -> str:
        file_id = await self._upload(path)
        endpoint = "/v1/embeddings" if embeddings else "/v1/chat/completions"
        body = {
            "input_file_id": file_id,
            "endpoint": endpoint,
            "completion_window": "24h",
            "metadata": {KEY_FIELD: key},
        }
        created = await self.http.json("POST", "/batches", body)
        return str(created["id"])

    async def _upload(self, path: str) -> str:
        session = self.backend.pool.session
        url = self.http.base + "/files"
        with open(path, "rb") as file:  # noqa: ASYNC230 - aiohttp reads it in pieces
            form = aiohttp.FormData()
            form.add_field("purpose", "batch")
            form.add_field(
                "file", file, filename=os.path.basename(path), content_type="application/jsonl"
            )
            try:
                async with session.post(url, data=form, headers=self.http.headers) as resp:
                    raw, status, headers = await resp.read(), resp.status, resp.headers
            except Exception as exc:
                raise map_transport_error(exc, f"POST {url}") from exc
        return str(self.http.decode(status, raw, headers, "POST /files")["id"])

    async def find(self, key: str, count: int, since: float, known: set[str]) -> str | None:
        after = None
        while True:
            query = {"limit": "100", **({"after": after} if after else {})}
            page = await self.http.json("GET", "/batches", params=query)
            for batch in page.get("data") or ():
                if (batch.get("metadata") or {}).get(KEY_FIELD) == key:
                    return str(batch["id"])
                if batch.get("created_at", 0) < since - 3600:
                    return None  # newest first: older than the intent, nothing left
            if not page.get("has_more") or not page.get("data"):
                return None
            after = page["data"][-1]["id"]

    async def state(self, batch_id: str) -> BatchState:
        return self.state_of(await self.http.json("GET", f"/batches/{batch_id}"))

    @staticmethod
    def state_of(raw: Any) -> BatchState:
        """A batch object, normalized."""
        batch_id = str(raw.get("id"))
        status = str(raw.get("status"))
        failure = None
        if status == "failed":
            errors = (raw.get("errors") or {}).get("data") or [{}]
            failure = "; ".join(str(e.get("message", "failed")) for e in errors[:3])
        counts = raw.get("request_counts") or {}
        return BatchState(batch_id, status, status in _ENDED, dict(counts), failure, raw)

    async def results(self, state: BatchState, requests: Lookup) -> AsyncIterator[ItemResult]:
        for file_id in (state.raw.get("output_file_id"), state.raw.get("error_file_id")):
            if file_id:
                async for line in self.http.lines(f"/files/{file_id}/content"):
                    yield self._item(line, requests)

    def _item(self, line: bytes, requests: Lookup) -> ItemResult:
        try:
            data = _Line(line)
            custom_id = str(data["custom_id"])
        except (msgspec.DecodeError, msgspec.ValidationError, KeyError) as exc:
            raise DecodeError(f"a batch result line is not a result: {exc}") from None
        response, error = data.get("response"), data.get("error")
        if isinstance(error, dict) and error.get("code") in _AGAIN:
            return ItemResult(custom_id, again=True)
        if not isinstance(response, dict):
            message = error.get("message") if isinstance(error, dict) else "no response"
            return ItemResult(custom_id, error=TransportError(f"batch item: {message}"))
        status, body = int(response.get("status_code", 0)), response.get("body")
        raw = msgspec.json.encode(body)
        if status != 200:
            return ItemResult(custom_id, error=self.backend.status_error(status, body, {}))
        request = requests.get(custom_id)
        try:
            if type(request) is EmbeddingRequest:
                return ItemResult(custom_id, self.backend.decode_embeddings(raw, request))
            return ItemResult(custom_id, self.backend.decode_chat(raw))
        except Exception as exc:  # a malformed body, an error body with a 200
            return ItemResult(custom_id, error=exc)

    async def cancel(self, batch_id: str) -> None:
        await self.http.json("POST", f"/batches/{batch_id}/cancel")
