"""The msgspec shapes of the Responses API's objects and stream events, and their
decoders (built once).

A stream event is decoded by one tagged-union decoder on its ``type``; the events that
carry nothing new for the chunks (what they finish came in deltas) are empty structs
of the union, so decoding them skips their fields; events the union does not know are
read as ``_Known``, for their sequence number.
"""

from __future__ import annotations

from typing import Any, Union

import msgspec

__all__ = [
    "ArgumentsDelta",
    "Completed",
    "Created",
    "ErrorEvent",
    "Event",
    "Failed",
    "InProgress",
    "Incomplete",
    "ItemAdded",
    "Queued",
    "ReasoningDelta",
    "RefusalDelta",
    "ResponseHead",
    "ResponseObject",
    "SummaryDelta",
    "TextDelta",
    "UsageObject",
    "decode_any",
    "decode_event",
    "decode_known",
    "decode_response",
]


class _Part(msgspec.Struct):
    type: str = ""
    text: str | None = None
    refusal: str | None = None


class _Item(msgspec.Struct):
    type: str = ""
    id: str | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    content: list[_Part] | None = None
    summary: list[_Part] | None = None


class _Details(msgspec.Struct):
    reason: str | None = None


class UsageObject(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int | None = None
    input_tokens_details: dict[str, Any] | None = None
    output_tokens_details: dict[str, Any] | None = None


class ResponseHead(msgspec.Struct):
    """A response object without its ``output``: what a stream's events need of it (the
    output came in deltas; skipping it keeps the final event's decode cheap)."""

    id: str = ""
    object: str = "response"
    model: str = ""
    created_at: float = 0
    status: str | None = None
    background: bool | None = None
    usage: UsageObject | None = None
    incomplete_details: _Details | None = None
    error: Any = None
    service_tier: str | None = None


class ResponseObject(ResponseHead):
    """A whole response object, with its output items."""

    output: list[_Item] = []


# -- the stream events: one tagged union ---------------------------------------------------


class Event(msgspec.Struct, tag_field="type", gc=False):
    sequence_number: int | None = None


class TextDelta(Event, tag="response.output_text.delta"):
    delta: str = ""


class RefusalDelta(Event, tag="response.refusal.delta"):
    delta: str = ""


class ArgumentsDelta(Event, tag="response.function_call_arguments.delta"):
    delta: str = ""
    output_index: int = 0


class SummaryDelta(Event, tag="response.reasoning_summary_text.delta"):
    delta: str = ""


class ReasoningDelta(Event, tag="response.reasoning_text.delta"):
    delta: str = ""


class ItemAdded(Event, tag="response.output_item.added"):
    item: _Item = msgspec.field(default_factory=_Item)
    output_index: int = 0


class Created(Event, tag="response.created"):
    response: ResponseHead = msgspec.field(default_factory=ResponseHead)


class InProgress(Event, tag="response.in_progress"):
    response: ResponseHead = msgspec.field(default_factory=ResponseHead)


class Queued(Event, tag="response.queued"):
    response: ResponseHead = msgspec.field(default_factory=ResponseHead)


class Completed(Event, tag="response.completed"):
    response: ResponseHead = msgspec.field(default_factory=ResponseHead)


class Incomplete(Event, tag="response.incomplete"):
    response: ResponseHead = msgspec.field(default_factory=ResponseHead)


class Failed(Event, tag="response.failed"):
    response: ResponseHead = msgspec.field(default_factory=ResponseHead)


class ErrorEvent(Event, tag="error"):
    error: Any = None
    code: Any = None
    message: str | None = None
    param: Any = None


_QUIET = (
    "response.output_text.done",
    "response.content_part.added",
    "response.content_part.done",
    "response.output_item.done",
    "response.function_call_arguments.done",
    "response.refusal.done",
    "response.reasoning_summary_part.added",
    "response.reasoning_summary_part.done",
    "response.reasoning_summary_text.done",
    "response.reasoning_text.done",
    "response.output_text.annotation.added",
)
_Quiet = tuple(
    msgspec.defstruct(f"_Quiet{k}", [], bases=(Event,), tag=tag, gc=False)
    for k, tag in enumerate(_QUIET)
)
"""Events that carry nothing new for the chunks (what they finish came in deltas)."""


class _Known(msgspec.Struct):
    """Any event, for its type and sequence number only (events the union lacks)."""

    type: str = ""
    sequence_number: int | None = None


_AnyEvent = (
    TextDelta
    | RefusalDelta
    | ArgumentsDelta
    | SummaryDelta
    | ReasoningDelta
    | ItemAdded
    | Created
    | InProgress
    | Queued
    | Completed
    | Incomplete
    | Failed
    | ErrorEvent
)
_EVENT_TYPES: tuple[Any, ...] = (_AnyEvent, *_Quiet)
decode_event = msgspec.json.Decoder(Union.__getitem__(_EVENT_TYPES)).decode
decode_known = msgspec.json.Decoder(_Known).decode
decode_response = msgspec.json.Decoder(ResponseObject).decode
decode_any = msgspec.json.Decoder().decode
