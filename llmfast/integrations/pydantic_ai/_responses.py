"""llmfast's completions, chunks and usage -> pydantic-ai's responses and stream events."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pydantic_ai.messages import (
    FinishReason,
    ModelResponse,
    ModelResponsePart,
    ModelResponseStreamEvent,
    TextPart,
    ThinkingPart,
    ToolCallPart,
)
from pydantic_ai.models import StreamedResponse
from pydantic_ai.usage import RequestUsage

from llmfast.errors import LLMFastError, StreamError, TransportError
from llmfast.integrations.pydantic_ai._errors import model_error
from llmfast.stream import ChatStream
from llmfast.types import ChatCompletion, Usage

__all__ = ["LLMFastStreamedResponse", "finish_reason", "model_response", "request_usage"]

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_call",
    "function_call": "tool_call",
    "content_filter": "content_filter",
}
# prompt/completion detail keys with a field of their own on RequestUsage
_PROMPT_FIELDS = {
    "cached_tokens": "cache_read_tokens",
    "cache_creation_tokens": "cache_write_tokens",
    "audio_tokens": "input_audio_tokens",
}
_COMPLETION_FIELDS = {
    "reasoning_tokens": "output_reasoning_tokens",
    "audio_tokens": "output_audio_tokens",
}

_USAGE_FIELDS = frozenset(f.name for f in dataclasses.fields(RequestUsage))
"""What this release's RequestUsage counts (older ones lack e.g. output_reasoning_tokens:
those counts go to ``details``)."""


def request_usage(usage: Usage | None) -> RequestUsage:
    """``Usage`` as pydantic-ai counts it: input tokens include cache reads and writes
    (as llmfast's ``prompt_tokens`` do); other integer details go to ``details``."""
    if usage is None:
        return RequestUsage()
    counts: dict[str, Any] = {
        "input_tokens": usage.prompt_tokens,
        "output_tokens": usage.completion_tokens,
    }
    details: dict[str, int] = {}
    for source, fields in (
        (usage.prompt_tokens_details, _PROMPT_FIELDS),
        (usage.completion_tokens_details, _COMPLETION_FIELDS),
    ):
        for key, value in (source or {}).items():
            if type(value) is not int:
                continue  # e.g. Anthropic's cache_creation breakdown (a dict)
            if key in fields and fields[key] in _USAGE_FIELDS:
                counts[fields[key]] = value
            elif value:
                details[key] = value
    if details:
        return RequestUsage(details=details, **counts)
    return RequestUsage(**counts)  # older releases take no `details=None`


def finish_reason(reason: str | None) -> FinishReason | None:
    """llmfast's finish reason (OpenAI's words) in pydantic-ai's words."""
    return None if reason is None else _FINISH.get(reason)


def _details(provider_reason: str | None, reason: str | None) -> dict[str, Any] | None:
    raw = provider_reason or reason
    return None if raw is None else {"finish_reason": raw}


def model_response(
    completion: ChatCompletion, model_name: str, provider: str, url: str | None
) -> ModelResponse:
    """The pydantic-ai `ModelResponse` for choice 0 of ``completion``."""
    parts: list[ModelResponsePart] = []
    reason = provider_reason = None
    if completion.choices:
        choice = completion.choices[0]
        message = choice.message
        reason, provider_reason = choice.finish_reason, choice.provider_finish_reason
        if message.reasoning_content or message.reasoning_signature:
            parts.append(
                ThinkingPart(
                    content=message.reasoning_content or "",
                    signature=message.reasoning_signature,
                    provider_name=provider if message.reasoning_signature else None,
                )
            )
        if message.content:
            parts.append(TextPart(content=message.content))
        parts.extend(
            ToolCallPart(call.function.name, call.function.arguments or None, call.id)
            for call in message.tool_calls or ()
        )
    return ModelResponse(
        parts=parts,
        usage=request_usage(completion.usage),
        model_name=completion.model or model_name,
        timestamp=_timestamp(completion.created),
        provider_name=provider,
        provider_url=url,
        provider_response_id=completion.id or None,
        provider_details=_details(provider_reason, reason),
        finish_reason=finish_reason(reason),
    )


def _timestamp(created: int) -> datetime:
    if created > 0:
        return datetime.fromtimestamp(created, tz=timezone.utc)
    return datetime.now(tz=timezone.utc)


@dataclass
class LLMFastStreamedResponse(StreamedResponse):
    """A pydantic-ai streamed response reading an llmfast [`ChatStream`][llmfast.ChatStream]."""

    _stream: ChatStream = field(repr=False)
    _model_name: str
    _provider_name: str
    _provider_url: str | None
    _timestamp: datetime = field(default_factory=lambda: datetime.now(tz=timezone.utc))

    async def _get_event_iterator(self) -> AsyncIterator[ModelResponseStreamEvent]:
        parts = self._parts_manager
        try:
            async for chunk in self._stream:
                if chunk.id and self.provider_response_id is None:
                    self.provider_response_id = chunk.id
                if chunk.usage is not None:
                    self._record_usage(request_usage(chunk.usage))
                for choice in chunk.choices:
                    if choice.index != 0:
                        continue
                    delta = choice.delta
                    if delta.reasoning_content or delta.reasoning_signature:
                        for event in _events(
                            parts.handle_thinking_delta(
                                vendor_part_id="reasoning",
                                content=delta.reasoning_content,
                                signature=delta.reasoning_signature,
                                provider_name=self._provider_name
                                if delta.reasoning_signature
                                else None,
                            )
                        ):
                            yield event
                    if delta.content:
                        for event in _events(
                            parts.handle_text_delta(vendor_part_id="content", content=delta.content)
                        ):
                            yield event
                    for call in delta.tool_calls or ():
                        function = call.function
                        maybe = parts.handle_tool_call_delta(
                            vendor_part_id=("tool", call.index),
                            tool_name=function.name if function is not None else None,
                            args=function.arguments if function is not None else None,
                            tool_call_id=call.id,
                        )
                        if maybe is not None:
                            yield maybe
                    if choice.finish_reason is not None:
                        self.finish_reason = finish_reason(choice.finish_reason)
                        self.provider_details = _details(
                            choice.provider_finish_reason, choice.finish_reason
                        )
        except LLMFastError as exc:
            raise model_error(exc, self._model_name, in_stream=True) from exc

    def _record_usage(self, usage: RequestUsage) -> None:
        add = getattr(self, "_add_usage", None)
        if add is not None:
            add(usage, reported=True, cumulative=True)
        else:  # older pydantic-ai: the attribute itself
            self._usage = usage

    def get_stream_cancel_errors(self) -> tuple[type[BaseException], ...]:
        """What closing the llmfast stream mid-read raises."""
        return (TransportError, StreamError)

    async def close_stream(self) -> None:
        """Release the connection (pydantic-ai calls this on ``cancel()``)."""
        await self._stream.aclose()

    @property
    def model_name(self) -> str:
        """The model that answers."""
        return self._model_name

    @property
    def provider_name(self) -> str | None:
        """The llmfast backend's kind (``openai``, ``anthropic``...)."""
        return self._provider_name

    @property
    def provider_url(self) -> str | None:
        """The backend's base URL, credentials masked."""
        return self._provider_url

    @property
    def timestamp(self) -> datetime:
        """When the stream was opened."""
        return self._timestamp


def _events(
    result: Iterable[ModelResponseStreamEvent] | ModelResponseStreamEvent | None,
) -> Iterator[ModelResponseStreamEvent]:
    """The events a parts-manager call produced: an iterator in current pydantic-ai, one
    event or ``None`` in older releases."""
    if result is None:
        return iter(())
    if isinstance(result, Iterable):
        return iter(result)
    return iter((result,))
