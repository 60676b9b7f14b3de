"""Ollama ``/api/chat`` (and ``/api/generate``) lines → the common chunk and completion types.

Every NDJSON line of a stream, and a whole non-streamed answer, has the same shape: a
``message`` (chat) or ``response`` (generate) fragment, ``done`` with ``done_reason`` and
the token counts on the last line, or ``{"error": "..."}``. Decoders are built once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from llmfast.backends._http import ChunkParser, decode
from llmfast.backends.ndjson import NDJSONDecoder
from llmfast.errors import StreamEventError, StreamTruncatedError, error_for_status
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
    "FINISH_REASONS",
    "PROVIDER",
    "OllamaLine",
    "OllamaStreamParser",
    "completion_from",
    "decode_line",
]

PROVIDER = "ollama"

FINISH_REASONS = {"stop": "stop", "length": "length", "load": "stop", "unload": "stop"}
"""Ollama ``done_reason`` → common finish reason (``stop`` after tool calls: ``tool_calls``)."""


class _Function(msgspec.Struct):
    name: str = ""
    arguments: msgspec.Raw = msgspec.Raw(b"")


class _ToolCall(msgspec.Struct):
    function: _Function
    id: str | None = None


class _Message(msgspec.Struct):
    content: str | None = None
    thinking: str | None = None
    tool_calls: list[_ToolCall] | None = None


class OllamaLine(msgspec.Struct):
    """One ``/api/chat`` or ``/api/generate`` object (a stream line or a whole answer)."""

    model: str = ""
    created_at: str | None = None
    message: _Message | None = None
    response: str | None = None
    thinking: str | None = None
    done: bool = False
    done_reason: str | None = None
    prompt_eval_count: int | None = None
    eval_count: int | None = None
    error: Any = None


decode_line = msgspec.json.Decoder(OllamaLine).decode
_decode_str = msgspec.json.Decoder(str).decode


def _created(line: OllamaLine) -> int:
    if not line.created_at:
        return 0
    try:
        return int(msgspec.convert(line.created_at, datetime).timestamp())
    except msgspec.ValidationError:
        return 0


def _arguments(raw: msgspec.Raw) -> str:
    data = bytes(raw)
    if data[:1] == b'"':  # a server that sends arguments as a JSON string
        text: str = _decode_str(data)
        return text
    return data.decode() if data else "{}"


def _usage(line: OllamaLine) -> Usage | None:
    prompt, output = line.prompt_eval_count, line.eval_count
    if prompt is None and output is None:
        return None
    return Usage(prompt or 0, output or 0, (prompt or 0) + (output or 0))


def _finish(reason: str | None, tools: bool) -> str:
    mapped = FINISH_REASONS.get(reason, reason) if reason is not None else "stop"
    return "tool_calls" if tools and mapped == "stop" else mapped


def _error(line: OllamaLine) -> dict[str, Any]:
    error = line.error
    return dict(error) if isinstance(error, dict) else {"message": str(error)}


def completion_from(raw: bytes) -> ChatCompletion:
    """A whole (``"stream": false``) Ollama answer as a ``ChatCompletion``."""
    line: OllamaLine = decode(decode_line, raw, "Ollama response")
    if line.error is not None:  # an error body sent with a 2xx status
        raise error_for_status(500, {"error": line.error}, {})
    message = line.message
    calls = None
    if message is not None and message.tool_calls:
        calls = [
            ToolCall(
                id=call.id or f"call_{k}",
                function=FunctionCall(call.function.name, _arguments(call.function.arguments)),
            )
            for k, call in enumerate(message.tool_calls)
        ]
    choice = Choice(
        message=ResponseMessage(
            content=line.response if message is None else message.content,
            tool_calls=calls,
            reasoning_content=line.thinking if message is None else message.thinking,
        ),
        # ``done: false`` in a whole answer: unfinished (delivered, never cached)
        finish_reason=_finish(line.done_reason, bool(calls)) if line.done else None,
        provider_finish_reason=line.done_reason,
    )
    return ChatCompletion(
        created=_created(line), model=line.model, choices=[choice], usage=_usage(line)
    )


class OllamaStreamParser(ChunkParser):
    """Feeds an Ollama NDJSON body; returns common chunks (see ``llmfast.backends._http``)."""

    __slots__ = ("_created", "_decoder", "_tools")

    end_marker = "its done line"  # which carries the finish itself

    def __init__(self, max_event_bytes: int | None = None) -> None:
        super().__init__()
        self._decoder = NDJSONDecoder(decode_line, max_line_bytes=max_event_bytes)
        self._created: int | None = None
        self._tools = 0  # tool calls seen so far

    def parse(self, data: bytes, out: list[ChatCompletionChunk]) -> None:
        self._chunks(self._decoder.feed_lines(data), out)

    def finish(self, out: list[ChatCompletionChunk]) -> None:
        self._chunks(self._decoder.close_lines(), out)
        if not self.done:
            raise StreamTruncatedError("the Ollama stream ended before its done line")

    def _chunks(self, lines: list[bytes], out: list[ChatCompletionChunk]) -> None:
        decode = self._decoder.decode
        for line in lines:
            if self.done:
                break
            out.append(self.chunk(decode(line)))

    def chunk(self, line: OllamaLine) -> ChatCompletionChunk:
        """The chunk for one line (raises ``StreamEventError`` for an error line)."""
        if line.error is not None:
            raise StreamEventError(_error(line))
        role = None
        if self._created is None:
            self._created = _created(line)
            role = "assistant"
        message = line.message
        calls = None
        if message is None:
            delta = Delta(role=role, content=line.response, reasoning_content=line.thinking)
        else:
            if message.tool_calls:
                calls = []
                for call in message.tool_calls:
                    index = self._tools
                    self._tools += 1
                    function = FunctionDelta(
                        call.function.name, _arguments(call.function.arguments)
                    )
                    ident = call.id or f"call_{index}"
                    calls.append(ToolCallDelta(index, ident, "function", function))
            delta = Delta(
                role=role,
                content=message.content,
                tool_calls=calls,
                reasoning_content=message.thinking,
            )
        choice: ChunkChoice
        if line.done:
            self.done = True
            reason = line.done_reason
            choice = ChunkChoice(
                delta=delta,
                finish_reason=_finish(reason, self._tools > 0),
                provider_finish_reason=reason,
            )
            usage = _usage(line)
        else:
            choice = ChunkChoice(delta=delta)
            usage = None
        return ChatCompletionChunk(
            created=self._created, model=line.model, choices=[choice], usage=usage
        )
