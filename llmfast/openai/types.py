"""The result types of ``llmfast.openai``, shaped like the ``openai`` SDK's models.

msgspec Structs with the SDK's class names, field names and field order, built from
llmfast's own results in a few microseconds. They have the pydantic-style methods SDK
code calls: ``model_dump()``, ``model_dump_json()``, ``to_dict()``, ``to_json()``.
Streamed chunks are thinner still:
[`ChatCompletionChunk`][llmfast.openai.types.ChatCompletionChunk] wraps llmfast's
chunk and reads through to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Generic, TypeVar

import msgspec

from llmfast import types as core

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionMessage",
    "ChatCompletionMessageToolCall",
    "Choice",
    "ChoiceLogprobs",
    "CompletionTokensDetails",
    "CompletionUsage",
    "CreateEmbeddingResponse",
    "Embedding",
    "EmbeddingUsage",
    "Function",
    "Model",
    "ModelsPage",
    "ParsedChatCompletion",
    "ParsedChatCompletionMessage",
    "ParsedChoice",
    "PromptTokensDetails",
]

T = TypeVar("T")


def _enc_hook(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)  # a pydantic model in ``parsed``
    if dump is not None:
        return dump(mode="json")
    return msgspec.to_builtins(value)


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


class BaseModel(msgspec.Struct, kw_only=True):
    """What every result type offers, named as the SDK's pydantic models name it."""

    def model_dump(self, *, exclude_none: bool = False, **_: Any) -> dict[str, Any]:
        """Every field as plain Python values (``None`` fields included, as pydantic does)."""
        data: dict[str, Any] = msgspec.to_builtins(self, enc_hook=_enc_hook)
        return _drop_none(data) if exclude_none else data

    def model_dump_json(
        self, *, indent: int | None = None, exclude_none: bool = False, **_: Any
    ) -> str:
        """The fields as JSON text (compact unless ``indent``)."""
        if exclude_none:
            raw = msgspec.json.encode(self.model_dump(exclude_none=True))
        else:
            raw = msgspec.json.encode(self, enc_hook=_enc_hook)
        if indent:
            raw = msgspec.json.format(raw, indent=indent)
        return raw.decode()

    def to_dict(self, **_: Any) -> dict[str, Any]:
        """The fields as a JSON-ready dict, leaving out those that are ``None`` (the SDK
        leaves out fields the server did not send; the two agree unless it sent nulls)."""
        return self.model_dump(exclude_none=True)

    def to_json(self, *, indent: int | None = 2, **_: Any) -> str:
        """[`to_dict`][llmfast.openai.types.BaseModel.to_dict] as JSON text (indented by 2)."""
        raw = msgspec.json.encode(self.to_dict())
        return (msgspec.json.format(raw, indent=indent) if indent else raw).decode()


class Function(BaseModel):
    """The function a tool call names; ``arguments`` is JSON text."""

    arguments: str = ""
    name: str = ""


class ChatCompletionMessageToolCall(BaseModel):
    """A tool call of an assistant message."""

    id: str = ""
    function: Function = msgspec.field(default_factory=Function)
    type: str = "function"


class ChatCompletionMessage(BaseModel):
    """The assistant message of a choice."""

    content: str | None = None
    refusal: str | None = None
    role: str = "assistant"
    annotations: list[Any] | None = None
    audio: Any = None
    function_call: Any = None
    tool_calls: list[ChatCompletionMessageToolCall] | None = None


class TopLogprob(BaseModel):
    """One alternative token."""

    token: str = ""
    bytes: list[int] | None = None
    logprob: float = 0.0


class ChatCompletionTokenLogprob(BaseModel):
    """A sampled token's log probability."""

    token: str = ""
    bytes: list[int] | None = None
    logprob: float = 0.0
    top_logprobs: list[TopLogprob] = msgspec.field(default_factory=list)


class ChoiceLogprobs(BaseModel):
    """Per-token log probabilities of a choice."""

    content: list[ChatCompletionTokenLogprob] | None = None
    refusal: list[ChatCompletionTokenLogprob] | None = None


class Choice(BaseModel):
    """One completion choice."""

    finish_reason: str | None = None
    index: int = 0
    logprobs: ChoiceLogprobs | None = None
    message: ChatCompletionMessage = msgspec.field(default_factory=ChatCompletionMessage)


class CompletionTokensDetails(BaseModel):
    """A breakdown of the completion tokens."""

    accepted_prediction_tokens: int | None = None
    audio_tokens: int | None = None
    reasoning_tokens: int | None = None
    rejected_prediction_tokens: int | None = None


class PromptTokensDetails(BaseModel):
    """A breakdown of the prompt tokens."""

    audio_tokens: int | None = None
    cached_tokens: int | None = None


class CompletionUsage(BaseModel):
    """Token counts of a completion."""

    completion_tokens: int = 0
    prompt_tokens: int = 0
    total_tokens: int = 0
    completion_tokens_details: CompletionTokensDetails | None = None
    prompt_tokens_details: PromptTokensDetails | None = None


class ChatCompletion(BaseModel):
    """A chat completion, as ``client.chat.completions.create(...)`` returns it."""

    id: str = ""
    choices: list[Choice] = msgspec.field(default_factory=list)
    created: int = 0
    model: str = ""
    object: str = "chat.completion"
    service_tier: str | None = None
    system_fingerprint: str | None = None
    usage: CompletionUsage | None = None


class ParsedChatCompletionMessage(ChatCompletionMessage, Generic[T]):
    """A message whose JSON content was decoded into ``parsed`` (``None`` on a refusal)."""

    parsed: T | None = None


class ParsedChoice(Choice, Generic[T]):
    """A choice of a parsed completion."""

    message: ParsedChatCompletionMessage[T] = msgspec.field(
        default_factory=ParsedChatCompletionMessage
    )


class ParsedChatCompletion(ChatCompletion, Generic[T]):
    """What ``client.chat.completions.parse(...)`` returns."""

    choices: list[ParsedChoice[T]] = msgspec.field(default_factory=list)  # type: ignore[assignment]


def _converted(value: Any, kind: type[T]) -> T:
    return msgspec.convert(msgspec.to_builtins(value), kind)


def usage(value: core.Usage | None) -> CompletionUsage | None:
    """The SDK-shaped copy of llmfast usage."""
    if value is None:
        return None
    if value.completion_tokens_details is None and value.prompt_tokens_details is None:
        return CompletionUsage(
            completion_tokens=value.completion_tokens,
            prompt_tokens=value.prompt_tokens,
            total_tokens=value.total_tokens,
        )
    return _converted(value, CompletionUsage)


# --- streamed chunks ----------------------------------------------------------------


class ChoiceDeltaToolCallFunction(BaseModel):
    """A fragment of a streamed function call."""

    arguments: str | None = None
    name: str | None = None


class ChoiceDeltaToolCall(BaseModel):
    """A fragment of a streamed tool call."""

    index: int = 0
    id: str | None = None
    function: ChoiceDeltaToolCallFunction | None = None
    type: str | None = None


class ChoiceDelta(BaseModel):
    """What a chunk adds to a choice."""

    content: str | None = None
    function_call: Any = None
    refusal: str | None = None
    role: str | None = None
    tool_calls: list[ChoiceDeltaToolCall] | None = None


class ChunkChoice(BaseModel):
    """One choice's part of a chunk."""

    delta: ChoiceDelta = msgspec.field(default_factory=ChoiceDelta)
    finish_reason: str | None = None
    index: int = 0
    logprobs: ChoiceLogprobs | None = None


class _ChunkModel(BaseModel):
    id: str = ""
    choices: list[ChunkChoice] = msgspec.field(default_factory=list)
    created: int = 0
    model: str = ""
    object: str = "chat.completion.chunk"
    service_tier: str | None = None
    system_fingerprint: str | None = None
    usage: CompletionUsage | None = None


class ChatCompletionChunk:
    """One streamed chunk, shaped like the SDK's ``ChatCompletionChunk``.

    A wrapper over llmfast's [`ChatCompletionChunk`][llmfast.types.ChatCompletionChunk]
    (so a stream costs one small object per chunk): ``choices`` are llmfast's
    [`ChunkChoice`][llmfast.types.ChunkChoice] objects, which have the SDK's attributes
    (``.delta.content``, ``.delta.tool_calls[0].function.arguments``,
    ``.finish_reason``, ``.index``); ``usage`` is a
    [`CompletionUsage`][llmfast.openai.types.CompletionUsage]. ``model_dump()`` and the
    other methods give the SDK's full shape.
    """

    __slots__ = ("_chunk", "choices", "id")

    object = "chat.completion.chunk"
    service_tier: str | None = None

    def __init__(self, chunk: core.ChatCompletionChunk) -> None:
        self._chunk = chunk
        self.id = chunk.id
        self.choices = chunk.choices

    @property
    def created(self) -> int:
        """When the completion was created (Unix seconds)."""
        return self._chunk.created

    @property
    def model(self) -> str:
        """The model that answered."""
        return self._chunk.model

    @property
    def system_fingerprint(self) -> str | None:
        """The backend configuration fingerprint, when sent."""
        return self._chunk.system_fingerprint

    @property
    def usage(self) -> CompletionUsage | None:
        """Token counts (the last chunk, with ``stream_options={"include_usage": True}``)."""
        return usage(self._chunk.usage)

    def _model(self) -> _ChunkModel:
        return _converted(self._chunk, _ChunkModel)

    def model_dump(self, **options: Any) -> dict[str, Any]:
        """Every field as plain Python values."""
        return self._model().model_dump(**options)

    def model_dump_json(self, **options: Any) -> str:
        """The fields as JSON text."""
        return self._model().model_dump_json(**options)

    def to_dict(self, **options: Any) -> dict[str, Any]:
        """The fields that are not ``None``, as a dict."""
        return self._model().to_dict(**options)

    def to_json(self, **options: Any) -> str:
        """[`to_dict`][llmfast.openai.types.ChatCompletionChunk.to_dict] as JSON text."""
        return self._model().to_json(**options)

    def __repr__(self) -> str:
        return repr(self._model()).replace("_ChunkModel(", "ChatCompletionChunk(", 1)


# --- embeddings and models ------------------------------------------------------------


class Embedding(BaseModel):
    """One input's vector (a base64 string when ``encoding_format="base64"``)."""

    embedding: list[float] | str = msgspec.field(default_factory=list)
    index: int = 0
    object: str = "embedding"


class EmbeddingUsage(BaseModel):
    """Token counts of an embeddings call (the SDK's ``create_embedding_response.Usage``)."""

    prompt_tokens: int = 0
    total_tokens: int = 0


class CreateEmbeddingResponse(BaseModel):
    """What ``client.embeddings.create(...)`` returns."""

    data: list[Embedding] = msgspec.field(default_factory=list)
    model: str = ""
    object: str = "list"
    usage: EmbeddingUsage = msgspec.field(default_factory=EmbeddingUsage)


class Model(BaseModel):
    """One model of ``client.models.list()``."""

    id: str = ""
    created: int = 0
    object: str = "model"
    owned_by: str = ""


class ModelsPage(BaseModel):
    """A page of models: ``.data``, iterable (``for model in page``)."""

    data: list[Model] = msgspec.field(default_factory=list)
    object: str = "list"

    def __iter__(self) -> Iterator[Model]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)
