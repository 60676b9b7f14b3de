"""Typed requests and responses, as msgspec Structs.

The shapes follow the OpenAI chat-completions wire format, which every backend maps
to and from. Requests accept plain OpenAI-style dicts wherever a message, content
part or tool is expected; they are encoded as given. Response types ignore fields
they don't know, so a provider adding fields never breaks decoding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec

from llmfast.usage import Usage

__all__ = [
    "AssistantMessage",
    "BaseMessage",
    "CacheMark",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatRequest",
    "Choice",
    "ChunkChoice",
    "ContentPart",
    "Delta",
    "DeveloperMessage",
    "Embedding",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "EmbeddingUsage",
    "FunctionCall",
    "FunctionDefinition",
    "FunctionDelta",
    "ImagePart",
    "ImageURL",
    "Logprobs",
    "Message",
    "MessageLike",
    "OutputAttempt",
    "ResponseMessage",
    "SystemMessage",
    "TextPart",
    "TokenLogprob",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolLike",
    "ToolMessage",
    "TopLogprob",
    "Usage",
    "UserMessage",
]


class _Wire(msgspec.Struct, omit_defaults=True):
    """Base for wire structs: ``None``/default fields are left out when encoding."""


CacheMark = bool | Literal["5m", "1h"] | dict[str, Any]
"""A prompt-cache breakpoint (``cache=`` on a part, message or tool): ``True`` (the
provider's default lifetime), ``"5m"`` or ``"1h"``, or Anthropic's own
``{"type": "ephemeral", "ttl": ...}``. On the wire and in plain dicts the key is
``cache_control``. See ``docs/tokens.md``."""


def _cache_field() -> Any:
    return msgspec.field(default=None, name="cache_control")


# --- content parts ---------------------------------------------------------------


class TextPart(_Wire, tag_field="type", tag="text"):
    """A text content part."""

    text: str
    cache: CacheMark | None = _cache_field()
    """Cache the prompt up to and including this part (Anthropic; see ``CacheMark``)."""


class ImageURL(_Wire):
    """An image by URL or ``data:`` URI, with an optional detail level."""

    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Wire, tag_field="type", tag="image_url"):
    """An image content part."""

    image_url: ImageURL
    cache: CacheMark | None = _cache_field()
    """Cache the prompt up to and including this part (Anthropic; see ``CacheMark``)."""


ContentPart = TextPart | ImagePart


# --- tool calls ------------------------------------------------------------------


class FunctionCall(_Wire):
    """A function the model asked to call; ``arguments`` is a JSON string."""

    name: str
    arguments: str = ""


class ToolCall(_Wire):
    """One tool call in an assistant message."""

    id: str
    function: FunctionCall
    type: str = "function"


class FunctionDefinition(_Wire):
    """A function the model may call; ``parameters`` is a JSON Schema object."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Wire):
    """A tool offered to the model."""

    function: FunctionDefinition
    type: str = "function"
    cache: CacheMark | None = _cache_field()
    """Cache the tools up to and including this one (Anthropic; see ``CacheMark``)."""


# --- messages --------------------------------------------------------------------


class BaseMessage(_Wire):
    """What every typed message is: a list mixing message types is a
    ``list[BaseMessage]``, which every call accepts."""


class SystemMessage(BaseMessage, tag_field="role", tag="system"):
    """Instructions for the model."""

    content: str | list[TextPart]
    name: str | None = None
    cache: CacheMark | None = _cache_field()
    """Cache the prompt up to the end of this message (Anthropic; see ``CacheMark``)."""


class DeveloperMessage(BaseMessage, tag_field="role", tag="developer"):
    """Instructions for the model (OpenAI's newer name for system on reasoning models)."""

    content: str | list[TextPart]
    name: str | None = None
    cache: CacheMark | None = _cache_field()
    """Cache the prompt up to the end of this message (Anthropic; see ``CacheMark``)."""


class UserMessage(BaseMessage, tag_field="role", tag="user"):
    """A user turn: text, or a list of text and image parts."""

    content: str | list[ContentPart]
    name: str | None = None
    cache: CacheMark | None = _cache_field()
    """Cache the prompt up to the end of this message (Anthropic; see ``CacheMark``)."""


class AssistantMessage(BaseMessage, tag_field="role", tag="assistant"):
    """An earlier assistant turn, possibly with tool calls."""

    content: str | list[TextPart] | None = None
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None
    name: str | None = None
    cache: CacheMark | None = _cache_field()
    """Cache the prompt up to the end of this message (Anthropic; see ``CacheMark``)."""


class ToolMessage(BaseMessage, tag_field="role", tag="tool"):
    """The result of a tool call."""

    content: str | list[TextPart]
    tool_call_id: str
    cache: CacheMark | None = _cache_field()
    """Cache the prompt up to the end of this message (Anthropic; see ``CacheMark``)."""


Message = SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage
MessageLike = BaseMessage | Mapping[str, Any]
"""A typed message, or a plain OpenAI-style dict such as ``{"role": "user", "content": "hi"}``."""
ToolLike = Tool | Mapping[str, Any]


# --- requests --------------------------------------------------------------------


class ChatRequest(_Wire, kw_only=True):
    """A chat-completion request.

    ``extra_body`` holds provider-specific parameters; they are merged into the
    top level of the JSON body (a key may not repeat a typed field).
    """

    model: str
    messages: Sequence[MessageLike]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    tools: Sequence[ToolLike] | None = None
    tool_choice: str | Mapping[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: Mapping[str, Any] | None = None
    reasoning_effort: str | None = None
    user: str | None = None
    prompt_cache_key: str | None = None
    """OpenAI's prompt-cache routing hint (sent by the OpenAI-compatible backend only)."""
    extra_body: Mapping[str, Any] | None = None


class EmbeddingRequest(_Wire, kw_only=True):
    """An embeddings request for one input or a batch of inputs."""

    model: str
    input: str | Sequence[str] | Sequence[int] | Sequence[Sequence[int]]
    dimensions: int | None = None
    encoding_format: Literal["float", "base64"] | None = None
    user: str | None = None
    extra_body: Mapping[str, Any] | None = None


# --- responses -------------------------------------------------------------------


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


class Embedding(_Wire):
    """One input's embedding vector."""

    embedding: list[float]
    index: int = 0
    object: str = "embedding"


class EmbeddingUsage(_Wire):
    """Token counts of an embeddings call; ``batch`` marks a provider-batch result
    (billed at the batch rate), as ``Usage.batch`` does."""

    prompt_tokens: int = 0
    total_tokens: int = 0
    batch: bool = False


class EmbeddingResponse(_Wire):
    """The result of ``client.embed``."""

    data: list[Embedding] = msgspec.field(default_factory=list)
    model: str = ""
    usage: EmbeddingUsage | None = None
    object: str = "list"

    @property
    def vectors(self) -> list[list[float]]:
        """The vectors in input order."""
        data = self.data
        if any(item.index != position for position, item in enumerate(data)):
            data = sorted(data, key=lambda item: item.index)
        return [item.embedding for item in data]


# --- structured output -------------------------------------------------------------


class OutputAttempt(msgspec.Struct, frozen=True):
    """One reply of a structured call that did not validate."""

    text: str
    """The reply's raw text (or tool-call arguments)."""
    error: str
    """What was wrong with it (msgspec's message, with the path)."""
    path: str | None = None
    """Where in the value it went wrong (``$.items[0].qty``), when known."""
