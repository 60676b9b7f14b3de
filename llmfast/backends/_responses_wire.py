"""OpenAI Responses API results → the common completion and chunk types.

A whole response (``POST /v1/responses`` without ``stream``, or ``GET
/v1/responses/{id}``) is decoded by `completion_from`; a streamed one is fed through
`ResponsesStreamParser`, whose events are decoded by one msgspec tagged-union decoder
(built once) and turned into chunks: text, refusal and reasoning deltas, one tool-call
delta per ``function_call`` item (its ``call_id`` kept) and per arguments fragment, and
the finish (status and ``incomplete_details`` mapped; the final response object kept as
``native``). Events the union does not know (new event types) are skipped, their
``sequence_number`` still counted: the parser remembers the last one seen, which is
where a dropped stream re-attaches (see ``_responses_resume``).
"""

from __future__ import annotations

from typing import Any, Union

import msgspec

from llmfast._error_body import status_named_by
from llmfast.backends._http import ChunkParser, ErrorBody, decode
from llmfast.backends._responses_frames import Frames
from llmfast.errors import DecodeError, StreamEventError, StreamTruncatedError
from llmfast.types import (
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    Delta,
    FunctionCall,
    FunctionDelta,
    ResponseMessage,
    ToolCall,
    ToolCallDelta,
    Usage,
)

__all__ = [
    "INCOMPLETE_REASONS",
    "PROVIDER",
    "TERMINAL",
    "ResponsesStreamParser",
    "completion_from",
    "finish_of",
    "usage_from",
]

PROVIDER = "openai-responses"
TERMINAL = frozenset({"completed", "incomplete", "failed", "cancelled"})
"""Statuses after which a response changes no more."""
INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}
"""``incomplete_details.reason`` → common finish reason (others kept as given)."""


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


class _Usage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int | None = None
    input_tokens_details: dict[str, Any] | None = None
    output_tokens_details: dict[str, Any] | None = None


class _Response(msgspec.Struct):
    id: str = ""
    object: str = "response"
    model: str = ""
    created_at: float = 0
    status: str | None = None
    background: bool | None = None
    output: list[_Item] = []
    usage: _Usage | None = None
    incomplete_details: _Details | None = None
    error: Any = None
    service_tier: str | None = None


# -- the stream events: one tagged union ---------------------------------------------------


class _Event(msgspec.Struct, tag_field="type", gc=False):
    sequence_number: int | None = None


class _TextDelta(_Event, tag="response.output_text.delta"):
    delta: str = ""


class _RefusalDelta(_Event, tag="response.refusal.delta"):
    delta: str = ""


class _ArgumentsDelta(_Event, tag="response.function_call_arguments.delta"):
    delta: str = ""
    output_index: int = 0


class _SummaryDelta(_Event, tag="response.reasoning_summary_text.delta"):
    delta: str = ""


class _ReasoningDelta(_Event, tag="response.reasoning_text.delta"):
    delta: str = ""


class _ItemAdded(_Event, tag="response.output_item.added"):
    item: _Item = msgspec.field(default_factory=_Item)
    output_index: int = 0


class _Created(_Event, tag="response.created"):
    response: _Response = msgspec.field(default_factory=_Response)


class _InProgress(_Event, tag="response.in_progress"):
    response: _Response = msgspec.field(default_factory=_Response)


class _Queued(_Event, tag="response.queued"):
    response: _Response = msgspec.field(default_factory=_Response)


class _Completed(_Event, tag="response.completed"):
    response: _Response = msgspec.field(default_factory=_Response)


class _Incomplete(_Event, tag="response.incomplete"):
    response: _Response = msgspec.field(default_factory=_Response)


class _Failed(_Event, tag="response.failed"):
    response: _Response = msgspec.field(default_factory=_Response)


class _Error(_Event, tag="error"):
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
    msgspec.defstruct(f"_Quiet{k}", [], bases=(_Event,), tag=tag, gc=False)
    for k, tag in enumerate(_QUIET)
)
"""Events that carry nothing new for the chunks (what they finish came in deltas)."""


class _Known(msgspec.Struct):
    """Any event, for its type and sequence number only (events the union lacks)."""

    type: str = ""
    sequence_number: int | None = None


_AnyEvent = (
    _TextDelta
    | _RefusalDelta
    | _ArgumentsDelta
    | _SummaryDelta
    | _ReasoningDelta
    | _ItemAdded
    | _Created
    | _InProgress
    | _Queued
    | _Completed
    | _Incomplete
    | _Failed
    | _Error
)
_EVENT_TYPES: tuple[Any, ...] = (_AnyEvent, *_Quiet)
_decode_event = msgspec.json.Decoder(Union.__getitem__(_EVENT_TYPES)).decode
_decode_known = msgspec.json.Decoder(_Known).decode
_decode_response = msgspec.json.Decoder(_Response).decode
_decode_any = msgspec.json.Decoder().decode
_FINAL = (_Completed, _Incomplete)
_CHUNK = "chat.completion.chunk"
_STARTS = (_Created, _InProgress, _Queued)


def usage_from(usage: _Usage) -> Usage:
    """Responses usage → ``Usage`` in the chat-completions shape: input/output tokens,
    ``input_tokens_details`` (``cached_tokens``) as ``prompt_tokens_details`` and
    ``output_tokens_details`` (``reasoning_tokens``) as ``completion_tokens_details``."""
    total = usage.total_tokens
    return Usage(
        prompt_tokens=usage.input_tokens,
        completion_tokens=usage.output_tokens,
        total_tokens=usage.input_tokens + usage.output_tokens if total is None else total,
        prompt_tokens_details=usage.input_tokens_details,
        completion_tokens_details=usage.output_tokens_details,
    )


def finish_of(response: _Response, has_calls: bool) -> tuple[str | None, str | None]:
    """``(finish_reason, provider_finish_reason)`` of a response in a final status."""
    status = response.status
    if status == "completed":
        return ("tool_calls" if has_calls else "stop"), status
    if status == "incomplete":
        details = response.incomplete_details
        reason = details.reason if details is not None else None
        if reason is None:
            return "length", status
        return INCOMPLETE_REASONS.get(reason, reason), reason
    return None, status


def error_of(response: _Response) -> StreamEventError:
    """The error of a ``failed`` (or cancelled) response."""
    error = response.error
    if error is None:
        error = {"message": f"the response ended with status {response.status!r}"}
    return StreamEventError(error, status=status_named_by(error))


def completion_from(raw: bytes) -> ChatCompletion:
    """A whole response object as a ``ChatCompletion`` (``native``: the object as sent)."""
    response: _Response = decode(_decode_response, raw, "Responses API response")
    if response.object != "response":  # e.g. {"error": {...}} with a 2xx status
        body = decode(_decode_any, raw, "Responses API response")
        if isinstance(body, dict) and body.get("error") is not None:
            raise ErrorBody(body)
        raise DecodeError(f"not a Responses API response: object {response.object!r}")
    native = decode(_decode_any, raw, "Responses API response")
    return completion_of(response, native)


def completion_of(response: _Response, native: dict[str, Any] | None) -> ChatCompletion:
    """``response`` (decoded) as a ``ChatCompletion``."""
    if response.status == "failed":
        raise ErrorBody({"error": response.error or {"message": "the response failed"}})
    texts: list[str] = []
    refusals: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    for item in response.output:
        kind = item.type
        if kind == "message":
            for part in item.content or ():
                if part.type == "output_text" and part.text is not None:
                    texts.append(part.text)
                elif part.type == "refusal" and part.refusal is not None:
                    refusals.append(part.refusal)
        elif kind == "function_call":
            function = FunctionCall(item.name or "", item.arguments or "")
            calls.append(ToolCall(id=item.call_id or item.id or "", function=function))
        elif kind == "reasoning":
            parts = (*(item.summary or ()), *(item.content or ()))
            reasoning.extend(part.text for part in parts if part.text)
    reason, provider_reason = finish_of(response, bool(calls))
    choice = Choice(
        message=ResponseMessage(
            content="".join(texts) if texts else None,
            refusal="".join(refusals) if refusals else None,
            tool_calls=calls or None,
            reasoning_content="\n\n".join(reasoning) if reasoning else None,
        ),
        finish_reason=reason,
        provider_finish_reason=provider_reason,
    )
    return ChatCompletion(
        id=response.id,
        created=int(response.created_at),
        model=response.model,
        choices=[choice],
        usage=None if response.usage is None else usage_from(response.usage),
        service_tier=response.service_tier,
        native=native,
    )


class ResponsesStreamParser(ChunkParser):
    """Feeds a Responses SSE body; returns common chunks (see ``llmfast.backends._http``).

    ``response_id``, ``background`` and ``last_sequence`` say where the stream stands;
    [`reattach`][llmfast.backends._responses_wire.ResponsesStreamParser.reattach] readies it
    for the rest of the same response on a new connection, where events already seen
    (by sequence number) are skipped.
    """

    __slots__ = (
        "_created",
        "_feed",
        "_model",
        "_role",
        "_tools",
        "background",
        "last_sequence",
        "max_event_bytes",
        "response_id",
        "status",
    )

    end_marker = "response.completed"

    def __init__(self, max_event_bytes: int | None = None) -> None:
        super().__init__()
        self.max_event_bytes = max_event_bytes
        self._feed = Frames(max_event_bytes).feed
        self.response_id = ""
        self.background = False
        self.status: str | None = None
        self.last_sequence = -1
        self._model = ""
        self._created = 0
        self._tools: dict[int, int] = {}  # output index → tool-call index
        self._role = True  # the first chunk still has to carry the role

    def reattach(self) -> None:
        """Forget the dropped connection's unfinished bytes; keep everything else."""
        self._feed = Frames(self.max_event_bytes).feed
        self.failure = None

    def parse(self, data: bytes, out: list[ChatCompletionChunk]) -> None:
        decode = _decode_event
        append = out.append
        text_delta = _TextDelta
        last = self.last_sequence
        rid, created, model = self.response_id, self._created, self._model
        try:
            for payload in self._feed(data):
                try:
                    parsed: _Event = decode(payload)
                except msgspec.ValidationError:
                    self.last_sequence = last
                    self._skip(payload)
                    last = self.last_sequence
                    continue
                except msgspec.DecodeError as exc:
                    raise DecodeError(
                        f"malformed Responses event: {exc}; data starts {payload[:200]!r}"
                    ) from exc
                sequence = parsed.sequence_number
                if sequence is not None:
                    if sequence <= last:
                        continue  # seen before the connection dropped
                    last = sequence
                if type(parsed) is text_delta and not self._role:  # the common case
                    choice = ChunkChoice(0, Delta(None, parsed.delta))
                    append(ChatCompletionChunk(rid, _CHUNK, created, model, [choice]))
                    continue
                self.last_sequence = last
                chunk = self._chunk(parsed, payload)
                if chunk is not None:
                    append(chunk)
                if self.done:
                    break
                rid, created, model = self.response_id, self._created, self._model
        finally:
            self.last_sequence = last

    def _skip(self, payload: bytes | str) -> None:
        """An event the union does not know: count its sequence number, skip it."""
        try:
            known = _decode_known(payload)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise DecodeError(
                f"malformed Responses event: {exc}; data starts {payload[:200]!r}"
            ) from exc
        sequence = known.sequence_number
        if sequence is not None and sequence > self.last_sequence:
            self.last_sequence = sequence

    def finish(self, out: list[ChatCompletionChunk]) -> None:
        if not self.done:
            raise StreamTruncatedError("the Responses stream ended before response.completed")

    def _note(self, out: list[ChatCompletionChunk]) -> None:
        """One choice, noted where it opens (`_make`) and finishes (`_final`): nothing
        to do per chunk."""

    def _make(self, delta: Delta, choice: ChunkChoice | None = None) -> ChatCompletionChunk:
        if choice is None:
            choice = ChunkChoice(delta=delta)
        if self._role:
            self._role = False
            choice.delta.role = "assistant"
            self._opened.add(0)
        return ChatCompletionChunk(
            id=self.response_id, created=self._created, model=self._model, choices=[choice]
        )

    def _chunk(self, event: _Event, payload: bytes | str) -> ChatCompletionChunk | None:
        kind = type(event)
        if kind is _ArgumentsDelta:
            assert isinstance(event, _ArgumentsDelta)
            index = self._tools.get(event.output_index)
            if index is None or not event.delta:
                return None
            call = ToolCallDelta(index=index, function=FunctionDelta(arguments=event.delta))
            return self._make(Delta(tool_calls=[call]))
        if kind is _ItemAdded:
            assert isinstance(event, _ItemAdded)
            item = event.item
            if item.type != "function_call":
                return None
            index = self._tools[event.output_index] = len(self._tools)
            function = FunctionDelta(name=item.name or "", arguments=item.arguments or "")
            call = ToolCallDelta(
                index=index, id=item.call_id or item.id, type="function", function=function
            )
            return self._make(Delta(tool_calls=[call]))
        if kind is _SummaryDelta or kind is _ReasoningDelta:
            return self._make(Delta(reasoning_content=event.delta))  # type: ignore[attr-defined]
        if kind is _TextDelta:  # the first one: it carries the role
            return self._make(Delta(content=event.delta))  # type: ignore[attr-defined]
        if kind is _RefusalDelta:
            assert isinstance(event, _RefusalDelta)
            return self._make(Delta(refusal=event.delta))
        if isinstance(event, _STARTS):
            response = event.response
            self.status = response.status
            if not self.response_id:
                self.response_id = response.id
                self._model = response.model
                self._created = int(response.created_at)
                self.background = bool(response.background)
            return None
        if isinstance(event, _FINAL):
            return self._final(event.response, payload)
        if kind is _Failed:
            assert isinstance(event, _Failed)
            self.status = event.response.status
            raise error_of(event.response)
        if kind is _Error:
            assert isinstance(event, _Error)
            error = event.error
            if error is None:
                error = {"code": event.code, "message": event.message, "param": event.param}
            raise StreamEventError(error, status=status_named_by(error))
        return None

    def _final(self, response: _Response, payload: bytes | str) -> ChatCompletionChunk:
        self.done = True
        self.status = response.status
        reason, provider_reason = finish_of(response, bool(self._tools))
        native = _decode_any(payload).get("response")
        choice = ChunkChoice(finish_reason=reason, provider_finish_reason=provider_reason)
        chunk = self._make(choice.delta, choice)
        if reason is not None:
            self._finished.add(0)
        chunk.usage = None if response.usage is None else usage_from(response.usage)
        chunk.native = native if isinstance(native, dict) else None
        if not chunk.model:
            chunk.model = response.model
        return chunk
