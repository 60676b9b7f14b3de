"""``chat.completions.parse`` and ``chat.completions.stream``: structured output on
llmfast's [output specs][llmfast.structured.OutputSpec], with the SDK's results,
errors and stream events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Mapping
from types import TracebackType
from typing import Any

import msgspec

from llmfast.openai import _convert as convert
from llmfast.openai import types as t
from llmfast.openai._config import NOT_GIVEN
from llmfast.openai._exceptions import ContentFilterFinishReasonError, LengthFinishReasonError
from llmfast.openai._stream import AsyncStream
from llmfast.structured import OutputSpec, output_spec

__all__ = ["ChatCompletionStreamManager", "ChatCompletionStreamState", "parse_result", "parse_spec"]


def parse_spec(response_format: Any) -> tuple[OutputSpec[Any] | None, Any]:
    """The spec to decode replies with (``None``: nothing to parse) and the
    ``response_format`` to send (the given dict, the type's strict schema, or nothing)."""
    if response_format is NOT_GIVEN or response_format is None:
        return None, NOT_GIVEN
    if isinstance(response_format, Mapping):
        return None, response_format
    spec = output_spec(response_format)
    return spec, spec.response_format()


def _check(choice: Any, completion: Any) -> None:
    if choice.finish_reason == "length":
        raise LengthFinishReasonError(completion=completion)
    if choice.finish_reason == "content_filter":
        raise ContentFilterFinishReasonError()


def parse_result(
    result: t.ChatCompletion, spec: OutputSpec[Any] | None
) -> t.ParsedChatCompletion[Any]:
    """``result`` as a parsed completion: each choice's content decoded into ``parsed``."""
    parsed = msgspec.convert(msgspec.to_builtins(result), t.ParsedChatCompletion)
    for choice in parsed.choices:
        _check(choice, parsed)
        message = choice.message
        if spec is not None and message.content and not message.refusal:
            message.parsed = spec.parse(message.content)
    return parsed


class ContentDeltaEvent(msgspec.Struct, kw_only=True):
    """``content.delta``: a fragment of text, the text so far, and the object so far."""

    type: str = "content.delta"
    delta: str
    snapshot: str
    parsed: Any = None


class ContentDoneEvent(msgspec.Struct, kw_only=True):
    """``content.done``: the whole text, and the object it decodes into."""

    type: str = "content.done"
    content: str
    parsed: Any = None


class RefusalDeltaEvent(msgspec.Struct, kw_only=True):
    """``refusal.delta``."""

    type: str = "refusal.delta"
    delta: str
    snapshot: str


class ChunkEvent(msgspec.Struct, kw_only=True):
    """``chunk``: every chunk, with the completion accumulated so far."""

    type: str = "chunk"
    chunk: t.ChatCompletionChunk
    snapshot: Any


class ChatCompletionStreamState:
    """The accumulation behind a stream manager: chunk in, events out."""

    def __init__(self, spec: OutputSpec[Any] | None) -> None:
        self._spec = spec
        self._text: list[str] = []
        self._refusal: list[str] = []

    def handle(self, chunk: t.ChatCompletionChunk) -> list[Any]:
        """The events one chunk makes (choice 0)."""
        events: list[Any] = [ChunkEvent(chunk=chunk, snapshot=None)]
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            delta = choice.delta
            if delta.content is not None:
                self._text.append(delta.content)
                events.append(ContentDeltaEvent(delta=delta.content, snapshot="".join(self._text)))
            if delta.refusal:
                self._refusal.append(delta.refusal)
                events.append(
                    RefusalDeltaEvent(delta=delta.refusal, snapshot="".join(self._refusal))
                )
            if choice.finish_reason is not None and self._text:
                content = "".join(self._text)
                parsed = None
                if self._spec is not None and choice.finish_reason == "stop":
                    parsed = self._spec.parse(content)
                events.append(ContentDoneEvent(content=content, parsed=parsed))
        return events

    def final(self, stream: AsyncStream) -> t.ParsedChatCompletion[Any]:
        """The completion accumulated from every chunk (usage too), parsed."""
        result = convert.completion(stream.stream.completion)
        if not stream.include_usage:  # as the SDK, which asks for it only when told
            result.usage = None
        return parse_result(result, self._spec)


class ChatCompletionStream:
    """The events of a stream (``async for event in stream``) and its final completion."""

    def __init__(self, stream: AsyncStream, spec: OutputSpec[Any] | None) -> None:
        self._stream = stream
        self._state = ChatCompletionStreamState(spec)
        self._done = False

    async def __aiter__(self) -> AsyncIterator[Any]:
        async for chunk in self._stream:
            for event in self._state.handle(chunk):
                yield event
        self._done = True

    async def until_done(self) -> ChatCompletionStream:
        """Read the stream to its end."""
        if not self._done:
            async for _ in self:
                pass
        return self

    async def get_final_completion(self) -> t.ParsedChatCompletion[Any]:
        """The whole completion (read to the end first), with ``parsed`` filled in."""
        await self.until_done()
        return self._state.final(self._stream)

    async def close(self) -> None:
        """Release the connection."""
        await self._stream.close()


class ChatCompletionStreamManager:
    """``async with client.chat.completions.stream(...) as stream``."""

    def __init__(self, opening: Awaitable[AsyncStream], spec: OutputSpec[Any] | None) -> None:
        self._opening = opening
        self._spec = spec
        self._stream: ChatCompletionStream | None = None

    async def __aenter__(self) -> ChatCompletionStream:
        self._stream = ChatCompletionStream(await self._opening, self._spec)
        return self._stream

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._stream is not None:
            await self._stream.close()
