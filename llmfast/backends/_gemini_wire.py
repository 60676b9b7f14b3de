"""Gemini ``GenerateContentResponse`` objects → the common completion and chunk types.

A streamed body (``streamGenerateContent?alt=sse``, CRLF-framed SSE) carries one
response object per event; each candidate becomes a choice, text parts content,
``thought`` parts reasoning, ``functionCall`` parts whole tool calls. Decoders are
built once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from llmfast.backends._convert import now
from llmfast.backends._http import ChunkParser, ErrorBody, decode
from llmfast.backends.sse import SSEDecoder
from llmfast.errors import (
    APIStatusError,
    DecodeError,
    StreamEventError,
    error_for_status,
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
    "FINISH_REASONS",
    "PROVIDER",
    "GeminiStreamParser",
    "completion_from",
    "error_code",
    "gemini_error",
    "usage_from",
]

PROVIDER = "gemini"

_FILTERED = (
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
    "LANGUAGE",
)
FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    **dict.fromkeys(_FILTERED, "content_filter"),
}
"""Gemini ``finishReason`` → common finish reason (``STOP`` after function calls:
``tool_calls``; a blocked prompt: ``content_filter``; others, e.g. ``OTHER``, kept)."""


class _FunctionCall(msgspec.Struct):
    name: str = ""
    args: msgspec.Raw = msgspec.Raw(b"")
    id: str | None = None


class _Part(msgspec.Struct, rename="camel"):
    text: str | None = None
    thought: bool = False
    thought_signature: str | None = None
    function_call: _FunctionCall | None = None


class _Content(msgspec.Struct):
    parts: list[_Part] = []


class _Candidate(msgspec.Struct, rename="camel"):
    content: _Content | None = None
    finish_reason: str | None = None
    index: int = 0


class _Modality(msgspec.Struct, rename="camel"):
    modality: str = ""
    token_count: int = 0


class _UsageMetadata(msgspec.Struct, rename="camel"):
    prompt_token_count: int = 0
    candidates_token_count: int = 0
    total_token_count: int = 0
    thoughts_token_count: int | None = None
    cached_content_token_count: int | None = None
    tool_use_prompt_token_count: int | None = None
    prompt_tokens_details: list[_Modality] | None = None
    candidates_tokens_details: list[_Modality] | None = None


class _PromptFeedback(msgspec.Struct, rename="camel"):
    block_reason: str | None = None


class _Response(msgspec.Struct, rename="camel"):
    candidates: list[_Candidate] = []
    usage_metadata: _UsageMetadata | None = None
    model_version: str = ""
    response_id: str = ""
    prompt_feedback: _PromptFeedback | None = None
    error: Any = None


_decode_response = msgspec.json.Decoder(_Response).decode


def error_code(error: Any) -> int | None:
    """The HTTP status of a Gemini error payload (``{"code", "message", "status"}``)."""
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, int) and 100 <= code < 600 else None


def gemini_error(status: int, body: Any, headers: Mapping[str, str]) -> APIStatusError:
    """The error for a Gemini error body ``{"error": {"code", "message", "status"}}``.

    The gRPC ``status`` stands in for the error type (a message saying "overloaded"
    makes an ``OverloadedError``), and a ``RetryInfo`` detail gives ``retry_after``
    when no header does. ``error.body`` is the body as sent.
    """
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return error_for_status(status, body, headers)
    message = str(error.get("message", ""))
    kind = "overloaded_error" if "overloaded" in message.lower() else error.get("status")
    exc = error_for_status(status, {"error": {**error, "type": kind}}, headers)
    exc.body = body
    if exc.retry_after is None:
        exc.retry_after = _retry_delay(error.get("details"))
    return exc


def _retry_delay(details: Any) -> float | None:
    for detail in details if isinstance(details, list) else ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(float(delay[:-1]), 0.0)
            except ValueError:
                return None
    return None


def usage_from(meta: _UsageMetadata) -> Usage:
    """Gemini usage metadata → ``Usage``: prompt tokens include the cached content
    (``cachedContentTokenCount``, as ``prompt_tokens_details.cached_tokens``) and the
    tool-use prompt; completion tokens include thinking tokens
    (``completion_tokens_details.reasoning_tokens``); audio, image and video counts
    per modality become ``audio_tokens``, ``image_tokens``, ``video_tokens``."""
    thoughts = meta.thoughts_token_count
    tool_prompt = meta.tool_use_prompt_token_count
    prompt = meta.prompt_token_count + (tool_prompt or 0)
    output = meta.candidates_token_count + (thoughts or 0)
    cached = meta.cached_content_token_count
    details = _modalities(meta.prompt_tokens_details)
    if cached is not None:
        details = details or {}
        details["cached_tokens"] = cached
    if tool_prompt is not None:
        details = details or {}
        details["tool_use_prompt_tokens"] = tool_prompt
    completion = _modalities(meta.candidates_tokens_details)
    if thoughts is not None:
        completion = completion or {}
        completion["reasoning_tokens"] = thoughts
    return Usage(
        prompt,
        output,
        meta.total_token_count or prompt + output,
        prompt_tokens_details=details,
        completion_tokens_details=completion,
    )


def _modalities(parts: list[_Modality] | None) -> dict[str, Any] | None:
    """Gemini's per-modality counts (``AUDIO``, ``IMAGE``...) as ``audio_tokens``,
    ``image_tokens``... (text is the rest, not repeated)."""
    if not parts:
        return None
    out: dict[str, Any] = {}
    for part in parts:
        kind = part.modality.lower()
        if kind and kind not in ("text", "modality_unspecified"):
            key = f"{kind}_tokens"
            out[key] = out.get(key, 0) + part.token_count
    return out or None


def _finish(reason: str, tools: bool) -> str:
    mapped = FINISH_REASONS.get(reason, reason)
    return "tool_calls" if tools and mapped == "stop" else mapped


class _Parts:
    """What one candidate's parts add up to."""

    __slots__ = ("calls", "reasoning", "signature", "text")

    def __init__(self, parts: list[_Part]) -> None:
        text: list[str] = []
        reasoning: list[str] = []
        self.signature: str | None = None
        self.calls: list[_FunctionCall] = []
        for part in parts:
            if part.thought_signature:
                self.signature = part.thought_signature
            if part.function_call is not None:
                self.calls.append(part.function_call)
            elif part.text is not None:
                (reasoning if part.thought else text).append(part.text)
        # None (not "") when the candidate sent no such part, as a stream accumulates.
        self.text = "".join(text) if text else None
        self.reasoning = "".join(reasoning) if reasoning else None


def _arguments(call: _FunctionCall) -> str:
    return bytes(call.args).decode() or "{}"


def _check(response: _Response) -> None:
    if response.error is not None:  # an error body sent with a 2xx status
        raise ErrorBody({"error": response.error})


def completion_from(raw: bytes) -> ChatCompletion:
    """A whole ``generateContent`` response as a ``ChatCompletion``."""
    response: _Response = decode(_decode_response, raw, "Gemini response")
    _check(response)
    choices: list[Choice] = []
    for candidate in response.candidates:
        parts = _Parts(candidate.content.parts if candidate.content else [])
        calls = [
            ToolCall(id=c.id or f"call_{k}", function=FunctionCall(c.name, _arguments(c)))
            for k, c in enumerate(parts.calls)
        ]
        reason = candidate.finish_reason
        message = ResponseMessage(
            content=parts.text,
            tool_calls=calls or None,
            reasoning_content=parts.reasoning,
            reasoning_signature=parts.signature,
        )
        choices.append(
            Choice(
                index=candidate.index,
                message=message,
                finish_reason=None if reason is None else _finish(reason, bool(calls)),
                provider_finish_reason=reason,
            )
        )
    blocked = response.prompt_feedback.block_reason if response.prompt_feedback else None
    if not choices and blocked is not None:
        choices.append(Choice(finish_reason="content_filter", provider_finish_reason=blocked))
    meta = response.usage_metadata
    return ChatCompletion(
        id=response.response_id,
        created=now(),
        model=response.model_version,
        choices=choices,
        usage=None if meta is None else usage_from(meta),
    )


class GeminiStreamParser(ChunkParser):
    """Feeds a ``streamGenerateContent?alt=sse`` body; returns common chunks."""

    __slots__ = ("_created", "_feed", "_tools")

    end_marker = "the end of the body"  # Gemini has no end event: each candidate finishes

    def __init__(self, max_event_bytes: int | None = None) -> None:
        super().__init__()
        self._feed = SSEDecoder(max_event_bytes).feed
        self._created = 0
        self._tools: dict[int, int] = {}  # candidate index → tool calls seen

    def parse(self, data: bytes, out: list[ChatCompletionChunk]) -> None:
        for event in self._feed(data):
            try:
                response = _decode_response(event.data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise DecodeError(
                    f"malformed Gemini event: {exc}; data starts {event.data[:200]!r}"
                ) from exc
            out.append(self.chunk(response))

    def finish(self, out: list[ChatCompletionChunk]) -> None:
        self.done = True  # then every candidate must have its finishReason (ChunkParser)

    def chunk(self, response: _Response) -> ChatCompletionChunk:
        """The chunk for one streamed response object."""
        if response.error is not None:
            raise StreamEventError(response.error, status=error_code(response.error))
        first = not self._created
        if first:
            self._created = now()
        choices = [self._choice(candidate, first) for candidate in response.candidates]
        blocked = response.prompt_feedback.block_reason if response.prompt_feedback else None
        if not choices and blocked is not None:
            choices.append(
                ChunkChoice(finish_reason="content_filter", provider_finish_reason=blocked)
            )
        meta = response.usage_metadata
        return ChatCompletionChunk(
            id=response.response_id,
            created=self._created,
            model=response.model_version,
            choices=choices,
            usage=None if meta is None else usage_from(meta),
        )

    def _choice(self, candidate: _Candidate, first: bool) -> ChunkChoice:
        parts = _Parts(candidate.content.parts if candidate.content else [])
        index = candidate.index
        calls = None
        if parts.calls:
            seen = self._tools.get(index, 0)
            calls = [
                ToolCallDelta(
                    seen + k,
                    c.id or f"call_{seen + k}",
                    "function",
                    FunctionDelta(c.name, _arguments(c)),
                )
                for k, c in enumerate(parts.calls)
            ]
            self._tools[index] = seen + len(calls)
        role = "assistant" if first else None
        if parts.signature is None:
            delta = Delta(role, parts.text, None, calls, parts.reasoning)
        else:
            delta = Delta(role, parts.text, None, calls, parts.reasoning, parts.signature)
        reason = candidate.finish_reason
        if reason is None:
            return ChunkChoice(index, delta)
        return ChunkChoice(
            index,
            delta,
            _finish(reason, index in self._tools),
            provider_finish_reason=reason,
        )
