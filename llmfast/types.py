"""Typed requests and responses, as msgspec Structs.

The shapes follow the OpenAI chat-completions wire format, which every backend maps
to and from. Requests accept plain OpenAI-style dicts wherever a message, content
part or tool is expected; they are encoded as given. Response types ignore fields
they don't know, so a provider adding fields never breaks decoding.

This module is the one place to import them from: the messages, the results and the
embeddings live in modules of their own beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec

from llmfast._types_embeddings import Embedding, EmbeddingResponse, EmbeddingUsage
from llmfast._types_messages import (
    AssistantMessage,
    BaseMessage,
    CacheMark,
    ContentPart,
    DeveloperMessage,
    FunctionCall,
    FunctionDefinition,
    ImagePart,
    ImageURL,
    Message,
    MessageLike,
    SystemMessage,
    TextPart,
    Tool,
    ToolCall,
    ToolLike,
    ToolMessage,
    UserMessage,
    _Wire,
)
from llmfast._types_results import (
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    Delta,
    FunctionDelta,
    Logprobs,
    ResponseMessage,
    TokenLogprob,
    ToolCallDelta,
    TopLogprob,
)
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


# --- structured output -------------------------------------------------------------


class OutputAttempt(msgspec.Struct, frozen=True):
    """One reply of a structured call that did not validate."""

    text: str
    """The reply's raw text (or tool-call arguments)."""
    error: str
    """What was wrong with it (msgspec's message, with the path)."""
    path: str | None = None
    """Where in the value it went wrong (``$.items[0].qty``), when known."""
