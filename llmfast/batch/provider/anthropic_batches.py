"""Anthropic's Message Batches: one create call whose body (``{"requests": [...]}``) is
written to disk and streamed up, results read line by line from the results stream.
See https://docs.anthropic.com/en/api/creating-message-batches.

Anthropic's batches carry no metadata, so a batch hidden by a crash between "create"
and the journal record is found by what can be seen: created after the intent, holding
the intent's number of requests, claimed by no journal entry. Its results are then
checked: every ``custom_id`` carries the batch key, so a batch that is not ours is
never taken for ours (its items are submitted again instead).
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import msgspec

from llmfast.backends._anthropic_wire import error_status
from llmfast.batch.provider.api import BatchLimits, BatchState, Http, ItemResult, Lookup
from llmfast.errors import APIStatusError, DecodeError, UnsupportedParameterError
from llmfast.pool import map_transport_error
from llmfast.types import ChatRequest, EmbeddingRequest

__all__ = ["ANTHROPIC_LIMITS", "AnthropicBatches"]

ANTHROPIC_LIMITS = BatchLimits(max_requests=100_000, max_bytes=256 * 1024 * 1024)
"""Anthropic's limits per batch: 100,000 requests, 256 MB."""
_Line = msgspec.json.Decoder(dict[str, Any]).decode
_AGAIN = frozenset({"expired", "canceled"})


class AnthropicBatches:
    """The Anthropic backend's Message Batches API."""

    name = "anthropic"
    head = b'{"requests":['
    separator = b","
    tail = b"]}"

    def __init__(self, backend: Any, limits: BatchLimits | None = None) -> None:
        self.http = Http(backend)
        self.backend = backend
        self.limits = limits or ANTHROPIC_LIMITS

    def line(self, custom_id: str, request: ChatRequest | EmbeddingRequest) -> bytes:
        if type(request) is not ChatRequest:
            raise UnsupportedParameterError(
                "embeddings", "anthropic", "Message Batches run chat requests only"
            )
        params = msgspec.json.encode(self.backend.wire_body(request))
        return b'{"custom_id":' + msgspec.json.encode(custom_id) + b',"params":' + params + b"}"

    async def submit(self, path: str, key: str, embeddings: bool) -> str:
        session = self.backend.pool.session
        url = self.http.base + "/messages/batches"
        headers = {**self.http.headers, "Content-Type": "application/json"}
        with open(path, "rb") as file:  # noqa: ASYNC230 - aiohttp reads it in pieces
            try:
                async with session.post(url, data=file, headers=headers) as resp:
                    raw, status, resp_headers = await resp.read(), resp.status, resp.headers
            except Exception as exc:
                raise map_transport_error(exc, f"POST {url}") from exc
        return str(self.http.decode(status, raw, resp_headers, "POST /messages/batches")["id"])

    async def find(self, key: str, count: int, since: float, known: set[str]) -> str | None:
        after = None
        while True:
            query = {"limit": "100", **({"after_id": after} if after else {})}
            page = await self.http.json("GET", "/messages/batches", params=query)
            for batch in page.get("data") or ():
                created = _seconds(batch.get("created_at"))
                if created < since - 60:
                    return None  # newest first: older than the intent
                if batch["id"] not in known and sum(batch["request_counts"].values()) == count:
                    return str(batch["id"])
            if not page.get("has_more") or not page.get("data"):
                return None
            after = page.get("last_id") or page["data"][-1]["id"]

    async def state(self, batch_id: str) -> BatchState:
        return self.state_of(await self.http.json("GET", f"/messages/batches/{batch_id}"))

    @staticmethod
    def state_of(raw: Any) -> BatchState:
        """A message batch object, normalized."""
        batch_id = str(raw.get("id"))
        status = str(raw.get("processing_status"))
        counts = raw.get("request_counts") or {}
        return BatchState(batch_id, status, status == "ended", dict(counts), None, raw)

    async def results(self, state: BatchState, requests: Lookup) -> AsyncIterator[ItemResult]:
        given = state.raw.get("results_url") if isinstance(state.raw, dict) else None
        same_host = (
            isinstance(given, str) and urlsplit(given).netloc == urlsplit(self.http.base).netloc
        )
        where = given if same_host else None  # the key goes to the API's own host only
        async for line in self.http.lines(where or f"/messages/batches/{state.id}/results"):
            yield self._item(line)

    def _item(self, line: bytes) -> ItemResult:
        try:
            data = _Line(line)
            custom_id, result = str(data["custom_id"]), data["result"]
            kind = result["type"]
        except (msgspec.DecodeError, msgspec.ValidationError, KeyError, TypeError) as exc:
            raise DecodeError(f"a batch result line is not a result: {exc}") from None
        if kind in _AGAIN:
            return ItemResult(custom_id, again=True)
        if kind == "succeeded":
            try:
                raw = msgspec.json.encode(result.get("message"))
                return ItemResult(custom_id, self.backend.decode_chat(raw))
            except Exception as exc:
                return ItemResult(custom_id, error=exc)
        body = result.get("error")
        inner = body.get("error") if isinstance(body, dict) else None
        status = error_status(inner) or 500
        error: APIStatusError = self.backend.status_error(status, body, {})
        return ItemResult(custom_id, error=error)

    async def cancel(self, batch_id: str) -> None:
        await self.http.json("POST", f"/messages/batches/{batch_id}/cancel")


def _seconds(stamp: Any) -> float:
    if not isinstance(stamp, str):
        return 0.0
    try:
        return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
