"""Structured streams: the output as it grows, then the validated object.

``async with client.stream(prompt, output=Invoice) as s:`` returns a
[StructuredStream][llmfast.structured.stream.StructuredStream].
[partials][llmfast.structured.stream.StructuredStream.partials] yields the object so far
after every chunk that adds to it, typed (fields that have arrived, strings growing;
see [PartialJSON][llmfast.structured.partial.PartialJSON] and
[typed_partial][llmfast.structured.typed_partial]), parsed and converted incrementally:
the whole stream costs time linear in the output's length. At the end,
[output][llmfast.structured.stream.StructuredStream.output] is the reply decoded and
validated into the type. A stream is one attempt: a reply that does not validate
raises [OutputValidationError][llmfast.errors.OutputValidationError] (use ``chat`` for
re-asking).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from llmfast.errors import OutputValidationError
from llmfast.structured.call import Mode, asking_for, prompt_messages
from llmfast.structured.output import OutputParseError, OutputSpec
from llmfast.structured.partial import PartialJSON, PartialJSONError
from llmfast.structured.typed_partial import PartialMaker
from llmfast.types import ChatCompletion, ChatCompletionChunk, OutputAttempt

if TYPE_CHECKING:
    from llmfast.client_calls import ClientCalls
    from llmfast.stream import ChatStream

__all__ = ["StructuredStream"]

T = TypeVar("T")
_UNSET: Any = object()


class StructuredStream(Generic[T]):
    """A streamed structured call (see the module). Use it with ``async with``."""

    def __init__(
        self, client: ClientCalls, prompt: Any, spec: OutputSpec[T], mode: Mode | None, call: Any
    ) -> None:
        self._asking = asking = asking_for(spec, mode, client.backend.kind)
        self._spec = spec
        messages, request_params = prompt_messages(prompt)
        params = asking.request_params({**request_params, **call})
        self._stream: ChatStream = client.stream(asking.messages(messages), **params)
        self._parser = PartialJSON()
        self._broken = False  # the text stopped being JSON: no more partials
        self._started = asking.mode != "prompted"  # prompted: skip text before the JSON
        self._tool_index: int | None = None
        self._output: Any = _UNSET

    async def __aenter__(self) -> StructuredStream[T]:
        await self._stream.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stream.__aexit__(exc_type, exc, tb)

    @property
    def stream(self) -> ChatStream:
        """The underlying chat stream (its chunks are read by ``partials``)."""
        return self._stream

    async def partials(self, *, raw: bool = False) -> AsyncIterator[Any]:
        """The object so far after each chunk that adds to it; the validated object is
        [output][llmfast.structured.stream.StructuredStream.output] once it ends.

        A partial is typed (see [typed_partial][llmfast.structured.typed_partial]): a
        Struct named like the output type whose fields are ``None`` until they arrive.
        ``raw=True`` gives the plain JSON value instead (dicts, lists, strings). Both
        share their completed parts with the partials after them: don't mutate them.
        """
        maker = None
        if not raw and self._spec.type is not None:
            maker = PartialMaker(self._spec.type, self._parser.closed_containers)
        async for chunk in self._stream:
            piece = self._piece(chunk)
            if piece and self._feed(piece):
                snapshot = self._parser.snapshot()
                if self._spec.wrapped:
                    snapshot = snapshot.get("value") if isinstance(snapshot, dict) else None
                yield snapshot if maker is None else maker.make(snapshot)
        self._finish()

    async def get_output(self) -> T:
        """Read the stream to its end and return the validated object."""
        async for _ in self.partials():
            pass
        return self.output

    @property
    def output(self) -> T:
        """The reply decoded and validated (after the stream ended)."""
        if self._output is _UNSET:
            raise RuntimeError("the stream has not ended yet: iterate partials() first")
        value: T = self._output
        return value

    @property
    def completion(self) -> ChatCompletion:
        """The accumulated completion (after the stream ended)."""
        return self._stream.completion

    def _piece(self, chunk: ChatCompletionChunk) -> str | None:
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            delta = choice.delta
            if self._asking.mode != "tool":
                return delta.content
            for call in delta.tool_calls or ():
                fn = call.function
                if fn is None:
                    continue
                if self._tool_index is None and fn.name == self._asking.tool_name:
                    self._tool_index = call.index
                if call.index == self._tool_index and fn.arguments:
                    return fn.arguments
        return None

    def _feed(self, piece: str) -> bool:
        if self._broken or self._parser.done:
            return False
        if not self._started:
            starts = [i for i in (piece.find("{"), piece.find("[")) if i >= 0]
            if not starts:
                return False
            piece = piece[min(starts) :]
            self._started = True
        try:
            self._parser.feed(piece)
        except PartialJSONError:
            self._broken = True  # the final validation reports what is wrong
            return False
        return True

    def _finish(self) -> None:
        reply = self._stream.completion
        usage = reply.usage
        text, _ = self._asking.reply_text(reply, usage)
        try:
            self._output = self._spec.parse(text)
        except OutputParseError as exc:
            raise OutputValidationError(
                f"the streamed {self._spec.name} is not valid: {exc}",
                attempts=[OutputAttempt(text, str(exc), exc.path)],
                completion=reply,
                usage=usage,
            ) from exc
