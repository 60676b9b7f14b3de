"""A streamed OpenAI Responses body → the common chunk types.

`ResponsesStreamParser` is fed the body's bytes; its events (framed by ``Frames``,
decoded by one msgspec tagged-union decoder built once) become chunks: text, refusal
and reasoning deltas, one tool-call delta per ``function_call`` item (its ``call_id``
kept) and per arguments fragment, and the finish (status and ``incomplete_details``
mapped; the final response object kept as ``native``). Events the union does not know
(new event types) are skipped, their ``sequence_number`` still counted: the parser
remembers the last one seen, which is where a dropped stream re-attaches (see
``_responses_resume``).
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from llmfast._error_body import status_named_by
from llmfast.backends._http import ChunkParser
from llmfast.backends._responses_events import (
    ArgumentsDelta,
    Completed,
    Created,
    ErrorEvent,
    Event,
    Failed,
    Incomplete,
    InProgress,
    ItemAdded,
    Queued,
    ReasoningDelta,
    RefusalDelta,
    ResponseHead,
    SummaryDelta,
    TextDelta,
    decode_any,
    decode_event,
    decode_known,
)
from llmfast.backends._responses_frames import Frames
from llmfast.backends._responses_wire import error_of, finish_of, usage_from
from llmfast.errors import DecodeError, StreamEventError, StreamTruncatedError
from llmfast.types import (
    ChatCompletionChunk,
    ChunkChoice,
    Delta,
    FunctionDelta,
    ToolCallDelta,
)

__all__ = ["ResponsesStreamParser"]

_FINAL = (Completed, Incomplete)
_CHUNK = "chat.completion.chunk"
_STARTS = (Created, InProgress, Queued)


class ResponsesStreamParser(ChunkParser):
    """Feeds a Responses SSE body; returns common chunks (see ``llmfast.backends._http``).

    ``response_id``, ``background`` and ``last_sequence`` say where the stream stands;
    [`reattach`][llmfast.backends._responses_stream.ResponsesStreamParser.reattach] readies it
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
        decode = decode_event
        append = out.append
        text_delta = TextDelta
        last = self.last_sequence
        rid, created, model = self.response_id, self._created, self._model
        plain = not self._role  # a text delta is then one chunk of three fresh structs
        try:
            for payload in self._feed(data):
                try:
                    parsed: Event = decode(payload)
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
                if type(parsed) is text_delta and plain:  # the common case
                    delta = Delta(None, parsed.delta)
                    append(
                        ChatCompletionChunk(rid, _CHUNK, created, model, [ChunkChoice(0, delta)])
                    )
                    continue
                self.last_sequence = last
                chunk = self._chunk(parsed, payload)
                if chunk is not None:
                    append(chunk)
                if self.done:
                    break
                rid, created, model = self.response_id, self._created, self._model
                plain = not self._role
        finally:
            self.last_sequence = last

    def _skip(self, payload: bytes | str) -> None:
        """An event the union does not know: count its sequence number, skip it."""
        try:
            known = decode_known(payload)
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

    def _note(self, out: Iterable[ChatCompletionChunk]) -> None:
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

    def _chunk(self, event: Event, payload: bytes | str) -> ChatCompletionChunk | None:
        kind = type(event)
        if kind is ArgumentsDelta:
            assert isinstance(event, ArgumentsDelta)
            index = self._tools.get(event.output_index)
            if index is None or not event.delta:
                return None
            call = ToolCallDelta(index=index, function=FunctionDelta(arguments=event.delta))
            return self._make(Delta(tool_calls=[call]))
        if kind is ItemAdded:
            assert isinstance(event, ItemAdded)
            item = event.item
            if item.type != "function_call":
                return None
            index = self._tools[event.output_index] = len(self._tools)
            function = FunctionDelta(name=item.name or "", arguments=item.arguments or "")
            call = ToolCallDelta(
                index=index, id=item.call_id or item.id, type="function", function=function
            )
            return self._make(Delta(tool_calls=[call]))
        if kind is SummaryDelta or kind is ReasoningDelta:
            return self._make(Delta(reasoning_content=event.delta))  # type: ignore[attr-defined]
        if kind is TextDelta:  # the first one: it carries the role
            return self._make(Delta(content=event.delta))  # type: ignore[attr-defined]
        if kind is RefusalDelta:
            assert isinstance(event, RefusalDelta)
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
        if kind is Failed:
            assert isinstance(event, Failed)
            self.status = event.response.status
            raise error_of(event.response)
        if kind is ErrorEvent:
            assert isinstance(event, ErrorEvent)
            error = event.error
            if error is None:
                error = {"code": event.code, "message": event.message, "param": event.param}
            raise StreamEventError(error, status=status_named_by(error))
        return None

    def _final(self, response: ResponseHead, payload: bytes | str) -> ChatCompletionChunk:
        self.done = True
        self.status = response.status
        reason, provider_reason = finish_of(response, bool(self._tools))
        native = decode_any(payload).get("response")
        choice = ChunkChoice(finish_reason=reason, provider_finish_reason=provider_reason)
        chunk = self._make(choice.delta, choice)
        if reason is not None:
            self._finished.add(0)
        chunk.usage = None if response.usage is None else usage_from(response.usage)
        chunk.native = native if isinstance(native, dict) else None
        if not chunk.model:
            chunk.model = response.model
        return chunk
