"""LangChain messages to llmfast's and back.

Requests: each LangChain message becomes an OpenAI-style message dict, which every llmfast
backend takes (the non-OpenAI ones translate it). Plain-text messages take a short path;
messages with content blocks (images, files, Anthropic- or OpenAI-shaped blocks, v1
standard blocks) go through LangChain's own ``convert_to_openai_messages``. An earlier
assistant turn keeps its text and tool calls; its reasoning blocks are not sent back.

Replies: a [ChatCompletion][llmfast.ChatCompletion] choice becomes an ``AIMessage`` (tool
calls parsed, reasoning in ``additional_kwargs["reasoning_content"]``, usage as
``usage_metadata`` with cache and reasoning token details), and a streamed chunk an
``AIMessageChunk`` with ``tool_call_chunks``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import msgspec
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    InputTokenDetails,
    InvalidToolCall,
    OutputTokenDetails,
    SystemMessage,
    ToolCall,
    ToolCallChunk,
    ToolMessage,
    UsageMetadata,
    convert_to_openai_messages,
)
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk

from llmfast.types import ChatCompletion, ChatCompletionChunk, Choice, Usage

__all__ = [
    "ai_message",
    "chunk_message",
    "response_metadata",
    "text_of",
    "to_llmfast",
    "usage_metadata",
]

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
_ROLES = {HumanMessage: "user", SystemMessage: "system"}
_INPUT_DETAILS = (
    ("cache_read", "cached_tokens"),
    ("cache_creation", "cache_creation_tokens"),
    ("audio", "audio_tokens"),
)
_OUTPUT_DETAILS = (("reasoning", "reasoning_tokens"), ("audio", "audio_tokens"))


def to_llmfast(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """OpenAI-style message dicts for ``messages`` (see the module)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        content = message.content
        kind = type(message)
        if type(content) is str:
            role = _ROLES.get(kind)
            if role is not None:
                item: dict[str, Any] = {"role": role, "content": content}
                if message.name:
                    item["name"] = message.name
                out.append(item)
                continue
            if kind is ToolMessage:
                call_id = message.tool_call_id  # type: ignore[attr-defined]
                out.append({"role": "tool", "content": content, "tool_call_id": call_id})
                continue
            if isinstance(message, AIMessage):
                out.append(_assistant(message, content))
                continue
        item = convert_to_openai_messages(message)  # content blocks, other roles
        if item.get("role") == "assistant":
            item["content"] = text_of(item.get("content"))
        out.append(item)
    return out


def _assistant(message: AIMessage, content: str) -> dict[str, Any]:
    item: dict[str, Any] = {"role": "assistant", "content": content}
    if message.tool_calls:
        item["tool_calls"] = [
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": _encode(call["args"]).decode()},
            }
            for call in message.tool_calls
        ]
    if message.name:
        item["name"] = message.name
    return item


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or its text blocks joined (reasoning,
    tool-use and other blocks dropped)."""
    if content is None or isinstance(content, str):
        return content or ""
    return "".join(
        block.get("text", "")
        for block in content
        if isinstance(block, dict) and block.get("type") == "text"
    )


# --- replies ---------------------------------------------------------------------------


def usage_metadata(usage: Usage) -> UsageMetadata:
    """llmfast's ``Usage`` as LangChain's: cached prompt tokens are ``cache_read``,
    cache writes ``cache_creation``, reasoning tokens ``reasoning``, audio ``audio``."""
    meta = cast(  # its *_details keys are optional (NotRequired in newer langchain-core)
        "UsageMetadata",
        {
            "input_tokens": usage.prompt_tokens,
            "output_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        },
    )
    prompt = usage.prompt_tokens_details
    if prompt:
        inputs: InputTokenDetails = {}
        for key, name in _INPUT_DETAILS:
            value = prompt.get(name)
            if type(value) is int:
                inputs[key] = value  # type: ignore[literal-required]
        if inputs:
            meta["input_token_details"] = inputs
    completion = usage.completion_tokens_details
    if completion:
        outputs: OutputTokenDetails = {}
        for key, name in _OUTPUT_DETAILS:
            value = completion.get(name)
            if type(value) is int:
                outputs[key] = value  # type: ignore[literal-required]
        if outputs:
            meta["output_token_details"] = outputs
    return meta


def response_metadata(
    model: str, finish_reason: str | None, completion: ChatCompletion | ChatCompletionChunk
) -> dict[str, Any]:
    """``model_name``, ``finish_reason``, ``system_fingerprint`` and the reply's ``id``."""
    meta: dict[str, Any] = {"model_name": model, "finish_reason": finish_reason}
    if completion.system_fingerprint is not None:
        meta["system_fingerprint"] = completion.system_fingerprint
    if completion.id:
        meta["id"] = completion.id
    tier = getattr(completion, "service_tier", None)
    if tier is not None:
        meta["service_tier"] = tier
    return meta


def ai_message(completion: ChatCompletion, choice: Choice) -> AIMessage:
    """One choice of a completion as an ``AIMessage``."""
    message = choice.message
    tool_calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    for call in message.tool_calls or ():
        name, text = call.function.name, call.function.arguments
        try:
            args = _decode(text) if text else {}
        except msgspec.DecodeError as exc:
            invalid.append(invalid_tool_call(name=name, args=text, id=call.id, error=str(exc)))
            continue
        if not isinstance(args, dict):
            error = "the arguments are not a JSON object"
            invalid.append(invalid_tool_call(name=name, args=text, id=call.id, error=error))
            continue
        tool_calls.append(tool_call(name=name, args=args, id=call.id))
    extra: dict[str, Any] = {}
    if message.reasoning_content:
        extra["reasoning_content"] = message.reasoning_content
    if message.refusal:
        extra["refusal"] = message.refusal
    meta = response_metadata(completion.model, choice.finish_reason, completion)
    if choice.logprobs is not None:
        meta["logprobs"] = msgspec.to_builtins(choice.logprobs)
    if choice.provider_finish_reason is not None:
        meta["provider_finish_reason"] = choice.provider_finish_reason
    usage = completion.usage
    if usage is not None:
        meta["token_usage"] = msgspec.to_builtins(usage)
    return AIMessage(
        content=message.content or "",
        additional_kwargs=extra,
        tool_calls=tool_calls,
        invalid_tool_calls=invalid,
        usage_metadata=None if usage is None else usage_metadata(usage),
        response_metadata=meta,
        id=completion.id or None,
    )


def chunk_message(chunk: ChatCompletionChunk) -> AIMessageChunk | None:
    """What a streamed chunk adds to choice 0, or ``None`` when it adds no content,
    reasoning or tool call (the finish, usage and model come in the last chunk)."""
    for choice in chunk.choices:
        if choice.index == 0:
            break
    else:
        return None
    delta = choice.delta
    content = delta.content
    calls: list[ToolCallChunk] = []
    for part in delta.tool_calls or ():
        function = part.function
        calls.append(
            tool_call_chunk(
                name=None if function is None else function.name,
                args=None if function is None else function.arguments,
                id=part.id,
                index=part.index,
            )
        )
    extra: dict[str, Any] = {}
    if delta.reasoning_content:
        extra["reasoning_content"] = delta.reasoning_content
    if delta.refusal:
        extra["refusal"] = delta.refusal
    if not content and not calls and not extra:
        return None
    return AIMessageChunk(
        content=content or "",
        additional_kwargs=extra,
        tool_call_chunks=calls,
        id=chunk.id or None,
    )
