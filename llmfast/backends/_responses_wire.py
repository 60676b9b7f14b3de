"""OpenAI Responses API results → the common completion and chunk types.

A whole response (``POST /v1/responses`` without ``stream``, or ``GET
/v1/responses/{id}``) is decoded by `completion_from` into a ``ChatCompletion``
(``native``: the object as sent). `usage_from`, `finish_of` and `error_of` are shared
with the stream parser (``_responses_stream``); the shapes decoded are in
``_responses_events``.
"""

from __future__ import annotations

from typing import Any

from llmfast._error_body import status_named_by
from llmfast.backends._http import ErrorBody, decode
from llmfast.backends._responses_events import (
    ResponseHead,
    ResponseObject,
    UsageObject,
    decode_any,
    decode_response,
)
from llmfast.errors import DecodeError, StreamEventError
from llmfast.types import (
    ChatCompletion,
    Choice,
    FunctionCall,
    ResponseMessage,
    ToolCall,
    Usage,
)

__all__ = [
    "INCOMPLETE_REASONS",
    "PROVIDER",
    "TERMINAL",
    "completion_from",
    "completion_of",
    "error_of",
    "finish_of",
    "usage_from",
]

PROVIDER = "openai-responses"
TERMINAL = frozenset({"completed", "incomplete", "failed", "cancelled"})
"""Statuses after which a response changes no more."""
INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}
"""``incomplete_details.reason`` → common finish reason (others kept as given)."""


def usage_from(usage: UsageObject) -> Usage:
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


def finish_of(response: ResponseHead, has_calls: bool) -> tuple[str | None, str | None]:
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


def error_of(response: ResponseHead) -> StreamEventError:
    """The error of a ``failed`` (or cancelled) response."""
    error = response.error
    if error is None:
        error = {"message": f"the response ended with status {response.status!r}"}
    return StreamEventError(error, status=status_named_by(error))


def completion_from(raw: bytes) -> ChatCompletion:
    """A whole response object as a ``ChatCompletion`` (``native``: the object as sent)."""
    response: ResponseObject = decode(decode_response, raw, "Responses API response")
    if response.object != "response":  # e.g. {"error": {...}} with a 2xx status
        body = decode(decode_any, raw, "Responses API response")
        if isinstance(body, dict) and body.get("error") is not None:
            raise ErrorBody(body)
        raise DecodeError(f"not a Responses API response: object {response.object!r}")
    native = decode(decode_any, raw, "Responses API response")
    return completion_of(response, native)


def completion_of(response: ResponseObject, native: dict[str, Any] | None) -> ChatCompletion:
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
