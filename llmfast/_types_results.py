"""Chat completions and their streamed chunks, as msgspec Structs (import them from
[llmfast.types][])."""

from __future__ import annotations

from typing import Any

import msgspec

from llmfast._types_messages import ToolCall, _Wire
from llmfast.usage import Usage


class TopLogprob(_Wire):
    """One alternative token and its log probability."""

    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(_Wire):
    """A sampled token's log probability, with the top alternatives when asked for."""

    token: str
    logprob: float
    bytes: list[int] | None = None
    top_logprobs: list[TopLogprob] | None = None


class Logprobs(_Wire):
    """Per-token log probabilities of a choice's content and refusal."""

    content: list[TokenLogprob] | None = None
    refusal: list[TokenLogprob] | None = None


class ResponseMessage(_Wire):
    """The assistant message of a completion choice."""

    role: str = "assistant"
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None
    reasoning_content: str | None = None
    reasoning_signature: str | None = None


class Choice(_Wire):
    """One completion choice.

    ``finish_reason`` is one of the common reasons (``stop``, ``length``,
    ``tool_calls``, ``content_filter``); ``provider_finish_reason`` keeps the
    provider's own word for it when that differs (``end_turn``, ``MAX_TOKENS``...).
    """

    index: int = 0
    message: ResponseMessage = msgspec.field(default_factory=ResponseMessage)
    finish_reason: str | None = None
    logprobs: Logprobs | None = None
    provider_finish_reason: str | None = None


class ChatCompletion(_Wire):
    """A whole chat completion: the result of ``client.chat`` or of an accumulated stream."""

    id: str = ""
    object: str = "chat.completion"
    created: int = 0
    model: str = ""
    choices: list[Choice] = msgspec.field(default_factory=list)
    usage: Usage | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None
    native: dict[str, Any] | None = None
    """The provider's own result object, for backends that keep it (the Responses
    backend: the whole response, with its output items and id); ``None`` otherwise."""
    earlier_usage: Usage | None = None
    """Usage the server reported for earlier attempts of this call (a retried stream
    that failed after its usage event, a failover); ``None`` when there was none."""

    @property
    def total_usage(self) -> Usage | None:
        """The whole call's usage: ``usage`` (the final attempt's) plus ``earlier_usage``."""
        earlier = self.earlier_usage
        if earlier is None:
            return self.usage
        return earlier if self.usage is None else self.usage + earlier

    @property
    def message(self) -> ResponseMessage:
        """The message of choice 0."""
        return self.choices[0].message

    @property
    def text(self) -> str | None:
        """The text of choice 0 (``None`` when the model sent no content)."""
        return self.choices[0].message.content if self.choices else None

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The tool calls of choice 0 (empty when there are none)."""
        if not self.choices:
            return []
        return self.choices[0].message.tool_calls or []

    @property
    def finish_reason(self) -> str | None:
        """Why choice 0 ended: ``stop``, ``length``, ``tool_calls``, ``content_filter``..."""
        return self.choices[0].finish_reason if self.choices else None


# The streamed types are not tracked by the cyclic GC (they hold no cycles): a stream keeps
# every chunk it received, and with c=128 streams in flight tracked chunks made each
# collection walk ~50,000 live objects: decoding cost ~1.7x as much per chunk.


class FunctionDelta(_Wire, gc=False):
    """A fragment of a streamed function call."""

    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(_Wire, gc=False):
    """A fragment of a streamed tool call; fragments with the same ``index`` join."""

    index: int = 0
    id: str | None = None
    type: str | None = None
    function: FunctionDelta | None = None


class Delta(_Wire, gc=False):
    """What one streamed chunk adds to a choice."""

    role: str | None = None
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    reasoning_content: str | None = None
    reasoning_signature: str | None = None


class ChunkChoice(_Wire, gc=False):
    """One choice's part of a streamed chunk (see ``Choice`` for the finish reasons)."""

    index: int = 0
    delta: Delta = msgspec.field(default_factory=Delta)
    finish_reason: str | None = None
    logprobs: Logprobs | None = None
    provider_finish_reason: str | None = None


class ChatCompletionChunk(_Wire, gc=False):
    """One streamed chunk (``chat.completion.chunk``)."""

    id: str = ""
    object: str = "chat.completion.chunk"
    created: int = 0
    model: str = ""
    choices: list[ChunkChoice] = msgspec.field(default_factory=list)
    usage: Usage | None = None
    system_fingerprint: str | None = None
    error: Any = None
    native: dict[str, Any] | None = None
    """On the chunk that finishes a stream, the provider's own final result object
    (see ``ChatCompletion.native``), for backends that keep it."""

    @property
    def text(self) -> str:
        """The text this chunk adds to choice 0 (``""`` when none)."""
        for choice in self.choices:
            if choice.index == 0:
                return choice.delta.content or ""
        return ""
