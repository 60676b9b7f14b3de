"""How each provider's batch API shapes its objects and result lines (for the mock
server's ``batch_api``): OpenAI's ``batch`` objects and output/error file lines,
Anthropic's ``message_batch`` objects and results lines."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from .anthropic_format import ANTHROPIC
from .formats import OPENAI, WireFormat

if TYPE_CHECKING:
    from .batch_api import StoredBatch

__all__ = ["ANTHROPIC_SHAPE", "OPENAI_SHAPE", "Shape"]

_DECODE = msgspec.json.Decoder().decode
_DAY = 86400


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


def _at(seconds: float | None, when: bool) -> int | None:
    return int(seconds) if seconds is not None and when else None


class Shape:
    """One provider's batch objects."""

    fmt: WireFormat = OPENAI
    body_field = "body"

    def item_of(self, line: bytes) -> tuple[str, Any]:
        """A request line's ``custom_id`` and request body."""
        try:
            item = _DECODE(line)
            return str(item.get("custom_id")), item.get(self.body_field)
        except (msgspec.DecodeError, AttributeError):
            return "None", None

    def is_embed(self, batch: StoredBatch) -> bool:
        """Whether the batch's items are embeddings requests."""
        return False

    def batch_object(self, batch: StoredBatch, now: float) -> dict[str, Any]:
        """The batch as the API shows it."""
        raise NotImplementedError

    def answered(self, custom_id: str, code: int, body: bytes, number: int) -> dict[str, Any]:
        """The result line of an answered item."""
        raise NotImplementedError

    def unanswered(self, custom_id: str, state: str) -> dict[str, Any]:
        """The result line of an item that expired or was cancelled."""
        raise NotImplementedError


class OpenAIShape(Shape):
    """OpenAI's Batch API (https://platform.openai.com/docs/api-reference/batch)."""

    def is_embed(self, batch: StoredBatch) -> bool:
        return batch.endpoint == "/v1/embeddings"

    def batch_object(self, batch: StoredBatch, now: float) -> dict[str, Any]:
        counts = batch.counts
        ended = batch.ended_at
        status = batch.status
        created = int(batch.created_at)
        errors = None
        if batch.failed_validation:
            errors = {
                "object": "list",
                "data": [
                    {
                        "code": "invalid_request",
                        "message": "The batch input file is invalid (mock validation fault).",
                        "param": None,
                        "line": 1,
                    }
                ],
            }
        total = 0 if batch.failed_validation else len(batch.custom_ids)
        done = counts["succeeded"]
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "errors": errors,
            "input_file_id": batch.input_file_id,
            "completion_window": "24h",
            "status": status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": created,
            "in_progress_at": None if batch.failed_validation else created,
            "expires_at": created + _DAY,
            "finalizing_at": None if ended is None else int(ended),
            "completed_at": _at(ended, status == "completed"),
            "failed_at": _at(ended, status == "failed"),
            "expired_at": _at(ended, status == "expired"),
            "cancelling_at": None if batch.cancelling_at is None else int(batch.cancelling_at),
            "cancelled_at": _at(ended, status == "cancelled"),
            "request_counts": {
                "total": total,
                "completed": done,
                "failed": total - done if ended is not None else 0,
            },
            "metadata": batch.metadata,
        }

    def answered(self, custom_id: str, code: int, body: bytes, number: int) -> dict[str, Any]:
        return {
            "id": f"batch_req_mock{number}",
            "custom_id": custom_id,
            "response": {
                "status_code": code,
                "request_id": f"req_batch{number}",
                "body": msgspec.Raw(body),
            },
            "error": None,
        }

    def unanswered(self, custom_id: str, state: str) -> dict[str, Any]:
        code = "batch_expired" if state == "expired" else "batch_cancelled"
        message = f"This request could not be executed before the batch was {state}."
        return {
            "id": f"batch_req_{custom_id}",
            "custom_id": custom_id,
            "response": None,
            "error": {"code": code, "message": message},
        }


class AnthropicShape(Shape):
    """Anthropic's Message Batches API
    (https://docs.anthropic.com/en/api/creating-message-batches)."""

    fmt = ANTHROPIC
    body_field = "params"

    def batch_object(self, batch: StoredBatch, now: float) -> dict[str, Any]:
        counts = batch.counts
        ended = batch.ended_at is not None
        status = "ended" if ended else "canceling" if batch.cancelling_at else "in_progress"
        processing = 0 if ended else len(batch.custom_ids)
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": {
                "processing": processing,
                "succeeded": counts["succeeded"],
                "errored": counts["errored"],
                "canceled": counts["canceled"],
                "expired": counts["expired"],
            },
            "ended_at": _iso(batch.ended_at),
            "created_at": _iso(batch.created_at),
            "expires_at": _iso(batch.created_at + _DAY),
            "archived_at": None,
            "cancel_initiated_at": _iso(batch.cancelling_at),
            "results_url": f"/v1/messages/batches/{batch.id}/results" if ended else None,
        }

    def answered(self, custom_id: str, code: int, body: bytes, number: int) -> dict[str, Any]:
        if code == 200:
            return {
                "custom_id": custom_id,
                "result": {"type": "succeeded", "message": msgspec.Raw(body)},
            }
        return {"custom_id": custom_id, "result": {"type": "errored", "error": msgspec.Raw(body)}}

    def unanswered(self, custom_id: str, state: str) -> dict[str, Any]:
        return {"custom_id": custom_id, "result": {"type": state}}


OPENAI_SHAPE = OpenAIShape()
ANTHROPIC_SHAPE = AnthropicShape()
