"""llmfast's results as the SDK-shaped types of ``llmfast.openai.types``."""

from __future__ import annotations

import array
import base64
import sys

from llmfast import types as core
from llmfast.openai.types import (
    ChatCompletion,
    ChatCompletionMessage,
    ChatCompletionMessageToolCall,
    Choice,
    ChoiceLogprobs,
    CreateEmbeddingResponse,
    Embedding,
    EmbeddingUsage,
    Function,
    _converted,
    usage,
)

__all__ = ["completion", "embeddings"]

# Built field by field: ~3 µs a completion, where msgspec.convert(from_attributes=True)
# takes ~14 µs (each attribute the source lacks costs it an AttributeError).


def completion(result: core.ChatCompletion) -> ChatCompletion:
    """The SDK-shaped copy of an llmfast completion."""
    choices = []
    for choice in result.choices:
        message = choice.message
        calls = message.tool_calls
        logprobs = choice.logprobs
        choices.append(
            Choice(
                finish_reason=choice.finish_reason,
                index=choice.index,
                logprobs=None if logprobs is None else _converted(logprobs, ChoiceLogprobs),
                message=ChatCompletionMessage(
                    content=message.content,
                    refusal=message.refusal,
                    role=message.role,
                    tool_calls=None if calls is None else [_tool_call(call) for call in calls],
                ),
            )
        )
    return ChatCompletion(
        id=result.id,
        choices=choices,
        created=result.created,
        model=result.model,
        object=result.object,
        service_tier=result.service_tier,
        system_fingerprint=result.system_fingerprint,
        usage=usage(result.usage),
    )


def _tool_call(call: core.ToolCall) -> ChatCompletionMessageToolCall:
    function = call.function
    return ChatCompletionMessageToolCall(
        id=call.id,
        function=Function(arguments=function.arguments, name=function.name),
        type=call.type,
    )


def embeddings(result: core.EmbeddingResponse, *, base64: bool = False) -> CreateEmbeddingResponse:
    """The SDK-shaped copy of an llmfast embeddings result (vectors back in base64 when
    that is what the call asked for, as the SDK returns them)."""
    data = [
        Embedding(embedding=_b64(item.embedding) if base64 else item.embedding, index=item.index)
        for item in result.data
    ]
    counts = result.usage
    return CreateEmbeddingResponse(
        data=data,
        model=result.model,
        usage=EmbeddingUsage()
        if counts is None
        else EmbeddingUsage(prompt_tokens=counts.prompt_tokens, total_tokens=counts.total_tokens),
    )


def _b64(vector: list[float] | str) -> str:
    if isinstance(vector, str):
        return vector
    floats = array.array("f", vector)
    if sys.byteorder != "little":
        floats.byteswap()
    return base64.b64encode(floats.tobytes()).decode()
