"""Accumulating streamed chunks into the final ``ChatCompletion``.

Text, refusal and reasoning fragments are joined per choice (``n > 1`` choices kept
apart by ``index``); tool calls are assembled by their ``index`` with argument
fragments joined; the last finish reason, usage and log probabilities are kept.
A non-streaming ``ChatCompletion`` passed to [`ChatAccumulator.add`][llmfast.ChatAccumulator.add] is
taken as the whole result.

A result is *finished* when it has a choice and every choice has a finish reason
(``completion_finished``, ``chunks_finished``): anything else was cut short, and the
cache never stores it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from llmfast.types import (
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    Delta,
    FunctionCall,
    Logprobs,
    ResponseMessage,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    Usage,
)

__all__ = ["ChatAccumulator", "chunks_finished", "completion_finished"]


class _ToolCallState:
    __slots__ = ("arguments", "id", "name", "type")

    def __init__(self) -> None:
        self.id = ""
        self.type = "function"
        self.name = ""
        self.arguments: list[str] = []

    def add(self, delta: ToolCallDelta) -> None:
        if delta.id and not self.id:
            self.id = delta.id
        if delta.type:
            self.type = delta.type
        function = delta.function
        if function is not None:
            # Some servers repeat the name in every fragment; keep the first one.
            if function.name and not self.name:
                self.name = function.name
            if function.arguments:
                self.arguments.append(function.arguments)

    def build(self) -> ToolCall:
        return ToolCall(
            id=self.id,
            type=self.type,
            function=FunctionCall(name=self.name, arguments="".join(self.arguments)),
        )


class _ChoiceState:
    __slots__ = (
        "content",
        "finish_reason",
        "logprobs_content",
        "logprobs_refusal",
        "provider_finish_reason",
        "reasoning",
        "refusal",
        "role",
        "saw_logprobs",
        "signature",
        "tool_calls",
    )

    def __init__(self) -> None:
        self.role = "assistant"
        self.content: list[str] | None = None
        self.refusal: list[str] | None = None
        self.reasoning: list[str] | None = None
        self.tool_calls: dict[int, _ToolCallState] | None = None
        self.finish_reason: str | None = None
        self.provider_finish_reason: str | None = None
        self.signature: str | None = None
        self.saw_logprobs = False
        self.logprobs_content: list[TokenLogprob] | None = None
        self.logprobs_refusal: list[TokenLogprob] | None = None

    def build(self, index: int) -> Choice:
        tool_calls = None
        if self.tool_calls:
            tool_calls = [self.tool_calls[i].build() for i in sorted(self.tool_calls)]
        logprobs = None
        if self.saw_logprobs:
            logprobs = Logprobs(content=self.logprobs_content, refusal=self.logprobs_refusal)
        return Choice(
            index=index,
            message=ResponseMessage(
                role=self.role,
                content=None if self.content is None else "".join(self.content),
                refusal=None if self.refusal is None else "".join(self.refusal),
                tool_calls=tool_calls,
                reasoning_content=None if self.reasoning is None else "".join(self.reasoning),
                reasoning_signature=self.signature,
            ),
            finish_reason=self.finish_reason,
            logprobs=logprobs,
            provider_finish_reason=self.provider_finish_reason,
        )


class ChatAccumulator:
    """Builds the final completion from chunks, one [`add`][llmfast.ChatAccumulator.add] at a
    time."""

    __slots__ = (
        "_choices",
        "_complete",
        "_header_pending",
        "created",
        "id",
        "model",
        "native",
        "system_fingerprint",
        "usage",
    )

    def __init__(self) -> None:
        self.id = ""
        self.model = ""
        self.created = 0
        self.system_fingerprint: str | None = None
        self.usage: Usage | None = None
        self.native: dict[str, Any] | None = None
        self._choices: dict[int, _ChoiceState] = {}
        self._complete: ChatCompletion | None = None
        self._header_pending = True

    def add(self, chunk: ChatCompletionChunk | ChatCompletion) -> None:
        """Fold one chunk into the result."""
        self.extend((chunk,))

    def extend(self, chunks: Iterable[ChatCompletionChunk | ChatCompletion]) -> None:
        """Fold chunks into the result, in order (one call for a whole stream is cheapest)."""
        choices = self._choices
        last = -1  # the index of ``state``: most streams have one choice
        state = _ChoiceState()
        for chunk in chunks:
            if type(chunk) is not ChatCompletionChunk:
                assert isinstance(chunk, ChatCompletion)
                self._complete = chunk
                continue
            if self._header_pending:
                self._take_header(chunk)
            if chunk.usage is not None:
                self.usage = chunk.usage
            for choice in chunk.choices:
                index = choice.index
                if index != last:
                    found = choices.get(index)
                    if found is None:
                        found = choices[index] = _ChoiceState()
                    state, last = found, index
                delta = choice.delta
                content = delta.content
                if content is not None:
                    parts = state.content
                    if parts is None:
                        state.content = [content]
                    else:
                        parts.append(content)
                if (
                    delta.role is not None
                    or delta.tool_calls
                    or delta.refusal is not None
                    or delta.reasoning_content is not None
                    or delta.reasoning_signature is not None
                ):
                    _add_rare(state, delta)
                if choice.finish_reason is not None:
                    state.finish_reason = choice.finish_reason
                    if chunk.native is not None:
                        self.native = chunk.native
                if choice.provider_finish_reason is not None:
                    state.provider_finish_reason = choice.provider_finish_reason
                if choice.logprobs is not None:
                    _add_logprobs(state, choice.logprobs)

    def _take_header(self, chunk: ChatCompletionChunk) -> None:
        # Some servers (Azure) open with a chunk whose id and model are empty.
        if not self.id:
            self.id = chunk.id
        if not self.model:
            self.model = chunk.model
        if not self.created:
            self.created = chunk.created
        if self.system_fingerprint is None:
            self.system_fingerprint = chunk.system_fingerprint
        self._header_pending = not (self.id and self.model and self.created)

    @property
    def finished(self) -> bool:
        """True once every choice seen so far has a finish reason."""
        if self._complete is not None:
            return True
        states = self._choices.values()
        return bool(states) and all(s.finish_reason is not None for s in states)

    def result(self) -> ChatCompletion:
        """The completion accumulated so far (complete once the stream has ended)."""
        if self._complete is not None:
            return self._complete
        return ChatCompletion(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=[self._choices[i].build(i) for i in sorted(self._choices)],
            usage=self.usage,
            system_fingerprint=self.system_fingerprint,
            native=self.native,
        )


def _add_rare(state: _ChoiceState, delta: Delta) -> None:
    """The parts of a delta that most chunks lack: role, tool calls, refusal, reasoning."""
    if delta.reasoning_signature is not None:
        state.signature = delta.reasoning_signature
    if delta.role:
        state.role = delta.role
    if delta.tool_calls:
        calls = state.tool_calls
        if calls is None:
            calls = state.tool_calls = {}
        for call in delta.tool_calls:
            call_state = calls.get(call.index)
            if call_state is None:
                call_state = calls[call.index] = _ToolCallState()
            call_state.add(call)
    if delta.refusal is not None:
        if state.refusal is None:
            state.refusal = [delta.refusal]
        else:
            state.refusal.append(delta.refusal)
    if delta.reasoning_content is not None:
        if state.reasoning is None:
            state.reasoning = [delta.reasoning_content]
        else:
            state.reasoning.append(delta.reasoning_content)


def _add_logprobs(state: _ChoiceState, logprobs: Logprobs) -> None:
    state.saw_logprobs = True
    if logprobs.content is not None:
        if state.logprobs_content is None:
            state.logprobs_content = list(logprobs.content)
        else:
            state.logprobs_content.extend(logprobs.content)
    if logprobs.refusal is not None:
        if state.logprobs_refusal is None:
            state.logprobs_refusal = list(logprobs.refusal)
        else:
            state.logprobs_refusal.extend(logprobs.refusal)


def completion_finished(completion: ChatCompletion) -> bool:
    """True when ``completion`` has a choice and every choice has a finish reason."""
    choices = completion.choices
    return bool(choices) and all(choice.finish_reason is not None for choice in choices)


def chunks_finished(chunks: list[ChatCompletionChunk]) -> bool:
    """True when the streamed ``chunks`` finish every choice they open (and open one)."""
    opened: set[int] = set()
    finished: set[int] = set()
    for chunk in chunks:
        for choice in chunk.choices:
            (opened if choice.finish_reason is None else finished).add(choice.index)
    return bool(finished) and opened <= finished
