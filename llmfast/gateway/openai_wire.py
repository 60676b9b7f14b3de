"""llmfast's results in OpenAI's exact wire shape.

llmfast's types leave out fields at their default value when encoded (``index: 0``,
``object: "chat.completion"``...), which OpenAI always sends and its SDKs read; these
functions put them back (on ``msgspec.to_builtins`` output: no Python-level walk of the
structs). A stream's common chunk, one text delta, is framed from a byte template
instead ([`ChunkFrames`][llmfast.gateway.openai_frames.ChunkFrames]).
"""

from __future__ import annotations

from typing import Any

import msgspec

from llmfast.types import ChatCompletion, ChatCompletionChunk, EmbeddingResponse

__all__ = ["chunk_json", "completion_json", "embeddings_json"]

_encode = msgspec.json.Encoder().encode
_to_builtins = msgspec.to_builtins


def completion_json(completion: ChatCompletion) -> bytes:
    """A chat completion as OpenAI sends it."""
    data: dict[str, Any] = _to_builtins(completion)
    data.setdefault("id", "")
    data["object"] = "chat.completion"
    data.setdefault("created", 0)
    data.setdefault("model", "")
    for choice in data.setdefault("choices", []):
        choice.setdefault("index", 0)
        message = choice.setdefault("message", {})
        message.setdefault("role", "assistant")
        message.setdefault("content", None)
        message.setdefault("refusal", None)
        choice.setdefault("logprobs", None)
        choice.setdefault("finish_reason", None)
    return _encode(data)


def chunk_json(chunk: ChatCompletionChunk, *, with_usage: bool = True) -> bytes:
    """A streamed chunk as OpenAI sends it (its ``usage`` left out unless ``with_usage``)."""
    data: dict[str, Any] = _to_builtins(chunk)
    if not with_usage:
        data.pop("usage", None)
    data.setdefault("id", "")
    data["object"] = "chat.completion.chunk"
    data.setdefault("created", 0)
    data.setdefault("model", "")
    for choice in data.setdefault("choices", []):
        choice.setdefault("index", 0)
        choice.setdefault("delta", {})
        choice.setdefault("logprobs", None)
        choice.setdefault("finish_reason", None)
        for call in choice["delta"].get("tool_calls") or ():
            call.setdefault("index", 0)
    return _encode(data)


def embeddings_json(result: EmbeddingResponse) -> bytes:
    """An embeddings result as OpenAI sends it."""
    data: dict[str, Any] = _to_builtins(result)
    data["object"] = "list"
    data.setdefault("model", "")
    for item in data.setdefault("data", []):
        item.setdefault("index", 0)
        item["object"] = "embedding"
    return _encode(data)
