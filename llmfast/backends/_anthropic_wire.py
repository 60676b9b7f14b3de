"""Anthropic Messages responses → the common completion and chunk types.

Decoders are built once; a streamed body is fed through `AnthropicStreamParser`
(SSE events: ``message_start``, ``content_block_start``/``_delta``/``_stop``,
``message_delta``, ``message_stop``, ``ping``, ``error``).
"""

from __future__ import annotations

from typing import Any

import msgspec

from llmfast.backends._convert import now
from llmfast.backends._http import ChunkParser, ErrorBody, decode
from llmfast.backends.sse import SSEDecoder
from llmfast.errors import (
    DecodeError,
    StreamEventError,
    StreamTruncatedError,
)
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
    "ERROR_STATUS",
    "FINISH_REASONS",
    "PROVIDER",
    "AnthropicStreamParser",
    "completion_from",
    "error_status",
    "usage_from",
]

PROVIDER = "anthropic"

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
"""Anthropic ``stop_reason`` → common finish reason (others, e.g. ``pause_turn``, kept)."""

ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
"""Anthropic error ``type`` → the HTTP status it stands for (``overloaded_error``: 529)."""


class _Usage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation: dict[str, Any] | None = None
    server_tool_use: dict[str, Any] | None = None
    service_tier: str | None = None


class _Block(msgspec.Struct):
    type: str
    text: str | None = None
    thinking: str | None = None
    signature: str | None = None
    id: str | None = None
    name: str | None = None
    input: msgspec.Raw = msgspec.Raw(b"")


class _Message(msgspec.Struct):
    type: str = "message"
    id: str = ""
    model: str = ""
    content: list[_Block] = []
    stop_reason: str | None = None
    usage: _Usage | None = None
    error: Any = None


class _Delta(msgspec.Struct):
    type: str | None = None
    text: str | None = None
    partial_json: str | None = None
    thinking: str | None = None
    signature: str | None = None
    stop_reason: str | None = None


class _Event(msgspec.Struct):
    type: str
    index: int = 0
    message: _Message | None = None
    content_block: _Block | None = None
    delta: _Delta | None = None
    usage: _Usage | None = None
    error: Any = None


_decode_message = msgspec.json.Decoder(_Message).decode
_decode_event = msgspec.json.Decoder(_Event).decode


def error_status(error: Any) -> int | None:
    """The HTTP status an Anthropic error payload stands for, when its type is known."""
    return ERROR_STATUS.get(error.get("type", "")) if isinstance(error, dict) else None


def usage_from(usage: _Usage) -> Usage:
    """Anthropic usage → ``Usage``: prompt tokens include cache reads and writes (which
    Anthropic reports *beside* ``input_tokens``); they are also reported as
    ``prompt_tokens_details`` ``cached_tokens`` / ``cache_creation_tokens``, with
    Anthropic's ``cache_creation`` breakdown (5-minute and 1-hour writes),
    ``server_tool_use`` and ``service_tier`` as sent. Anthropic's ``input_tokens`` is
    ``Usage.uncached_input_tokens``; thinking tokens are part of ``output_tokens`` and
    not reported apart."""
    read = usage.cache_read_input_tokens
    created = usage.cache_creation_input_tokens
    prompt = (usage.input_tokens or 0) + (read or 0) + (created or 0)
    output = usage.output_tokens or 0
    details: dict[str, Any] | None = None
    if read is not None or created is not None:
        details = {"cached_tokens": read or 0, "cache_creation_tokens": created or 0}
        if usage.cache_creation is not None:
            details["cache_creation"] = usage.cache_creation
    if usage.server_tool_use is not None or usage.service_tier is not None:
        details = details or {}
        if usage.server_tool_use is not None:
            details["server_tool_use"] = usage.server_tool_use
        if usage.service_tier is not None:
            details["service_tier"] = usage.service_tier
    return Usage(prompt, output, prompt + output, prompt_tokens_details=details)


def _arguments(raw: msgspec.Raw) -> str:
    text = bytes(raw).decode()
    return "" if text in ("", "{}") else text


def completion_from(raw: bytes) -> ChatCompletion:
    """A whole Messages API response as a ``ChatCompletion``."""
    message: _Message = decode(_decode_message, raw, "Anthropic message")
    if message.type == "error":  # an error body sent with a 2xx status
        raise ErrorBody({"type": "error", "error": message.error})
    texts: list[str] = []
    reasoning: list[str] = []
    signature = None
    calls: list[ToolCall] = []
    for block in message.content:
        kind = block.type
        if kind == "text":
            texts.append(block.text or "")
        elif kind == "thinking":
            reasoning.append(block.thinking or "")
            signature = block.signature or signature
        elif kind == "tool_use":
            arguments = _arguments(block.input) or "{}"
            calls.append(
                ToolCall(id=block.id or "", function=FunctionCall(block.name or "", arguments))
            )
    reason = message.stop_reason
    choice = Choice(
        message=ResponseMessage(
            content="".join(texts) if texts else None,
            tool_calls=calls or None,
            reasoning_content="".join(reasoning) if reasoning else None,
            reasoning_signature=signature,
        ),
        finish_reason=None if reason is None else FINISH_REASONS.get(reason, reason),
        provider_finish_reason=reason,
    )
    usage = None if message.usage is None else usage_from(message.usage)
    return ChatCompletion(
        id=message.id, created=now(), model=message.model, choices=[choice], usage=usage
    )


def _merge_usage(start: _Usage | None, final: _Usage | None) -> _Usage | None:
    """``message_delta`` usage (cumulative) over ``message_start``'s, field by field."""
    if start is None or final is None:
        return final or start
    return _Usage(
        *(
            start_value if value is None else value
            for value, start_value in zip(
                msgspec.structs.astuple(final), msgspec.structs.astuple(start), strict=True
            )
        )
    )


class AnthropicStreamParser(ChunkParser):
    """Feeds a Messages SSE body; returns common chunks (see ``llmfast.backends._http``)."""

    __slots__ = ("_created", "_feed", "_id", "_model", "_role", "_tools", "_usage")

    end_marker = "message_stop"  # the finish is message_delta's stop_reason, before it

    def __init__(self, max_event_bytes: int | None = None) -> None:
        super().__init__()
        self._feed = SSEDecoder(max_event_bytes).feed
        self._id = ""
        self._model = ""
        self._created = 0
        self._usage: _Usage | None = None
        self._tools: dict[int, int] = {}  # content-block index → tool-call index
        self._role = True  # the first chunk still has to carry the role

    def parse(self, data: bytes, out: list[ChatCompletionChunk]) -> None:
        for event in self._feed(data):
            if event.event == "ping":
                continue
            try:
                parsed = _decode_event(event.data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise DecodeError(
                    f"malformed Anthropic event: {exc}; data starts {event.data[:200]!r}"
                ) from exc
            chunk = self._chunk(parsed)
            if chunk is not None:
                out.append(chunk)
            elif self.done:
                break

    def finish(self, out: list[ChatCompletionChunk]) -> None:
        if not self.done:
            raise StreamTruncatedError("the Anthropic stream ended before message_stop")

    def _make(
        self, delta: Delta, choice: ChunkChoice | None = None, usage: Usage | None = None
    ) -> ChatCompletionChunk:
        if choice is None:
            choice = ChunkChoice(delta=delta)
        if self._role:  # message_start makes no chunk: the first chunk is the first content
            self._role = False
            choice.delta.role = "assistant"
            if usage is None and self._usage is not None:  # message_start's: the input
                usage = usage_from(self._usage)  # tokens count even if the stream breaks
        return ChatCompletionChunk(
            id=self._id,
            created=self._created,
            model=self._model,
            choices=[choice],
            usage=usage,
        )

    def _chunk(self, event: _Event) -> ChatCompletionChunk | None:
        kind = event.type
        if kind == "content_block_delta":
            delta = event.delta
            if delta is None:
                return None
            dtype = delta.type
            if dtype == "text_delta":
                return self._make(Delta(content=delta.text))
            if dtype == "input_json_delta":
                index = self._tools.get(event.index)
                if index is None or not delta.partial_json:
                    return None  # e.g. the input of a server tool (server_tool_use)
                call = ToolCallDelta(
                    index=index, function=FunctionDelta(arguments=delta.partial_json)
                )
                return self._make(Delta(tool_calls=[call]))
            if dtype == "thinking_delta":
                return self._make(Delta(reasoning_content=delta.thinking))
            if dtype == "signature_delta":
                return self._make(Delta(reasoning_signature=delta.signature))
            return None  # e.g. citations_delta
        if kind == "content_block_start":
            return self._block_start(event)
        if kind == "message_delta":
            reason = None if event.delta is None else event.delta.stop_reason
            usage = _merge_usage(self._usage, event.usage)
            choice = ChunkChoice(
                finish_reason=None if reason is None else FINISH_REASONS.get(reason, reason),
                provider_finish_reason=reason,
            )
            return self._make(choice.delta, choice, None if usage is None else usage_from(usage))
        if kind == "message_stop":
            self.done = True
        elif kind == "message_start":
            message = event.message or _Message()
            self._id, self._model, self._created = message.id, message.model, now()
            self._usage = message.usage
        elif kind == "error":
            error = StreamEventError(event.error, status=error_status(event.error))
            if self._usage is not None:  # message_start came: that attempt counts
                error.usage = usage_from(self._usage)
            raise error
        return None

    def _block_start(self, event: _Event) -> ChatCompletionChunk | None:
        block = event.content_block
        if block is None:
            return None
        kind = block.type
        if kind == "text":
            return self._make(Delta(content=block.text)) if block.text else None
        if kind == "tool_use":
            index = self._tools[event.index] = len(self._tools)
            function = FunctionDelta(name=block.name or "", arguments=_arguments(block.input))
            call = ToolCallDelta(index=index, id=block.id, type="function", function=function)
            return self._make(Delta(tool_calls=[call]))
        if kind == "thinking" and block.thinking:
            return self._make(Delta(reasoning_content=block.thinking))
        return None
