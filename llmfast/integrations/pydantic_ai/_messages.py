"""pydantic-ai's message history and tools -> the OpenAI-style dicts llmfast sends.

llmfast's requests take OpenAI chat-completions messages for every backend (each
backend translates them to its own wire format), so this is the one mapping needed.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from typing import Any

from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    RetryPromptPart,
    SystemPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.tools import ToolDefinition

__all__ = ["map_messages", "map_tool"]

Json = dict[str, Any]


def map_messages(messages: Sequence[ModelMessage], instructions: Sequence[str]) -> list[Json]:
    """The chat messages for a pydantic-ai history; ``instructions`` become system
    messages placed after the history's leading system prompts."""
    mapped: list[Json] = []
    for message in messages:
        if isinstance(message, ModelRequest):
            mapped.extend(_request(message))
        elif isinstance(message, ModelResponse):
            assistant = _response(message)
            if assistant is not None:
                mapped.append(assistant)
        else:  # pragma: no cover - ModelMessage is a union of the two
            raise UserError(f"unknown message type {type(message).__name__}")
    if instructions:
        at = 0
        while at < len(mapped) and mapped[at]["role"] == "system":
            at += 1
        mapped[at:at] = [{"role": "system", "content": text} for text in instructions]
    return mapped


def map_tool(tool: ToolDefinition) -> Json:
    """An OpenAI-style tool for a pydantic-ai tool definition."""
    function: Json = {"name": tool.name, "parameters": tool.parameters_json_schema}
    if tool.description:
        function["description"] = tool.description
    if tool.strict:
        function["strict"] = True
    return {"type": "function", "function": function}


def _request(message: ModelRequest) -> Iterator[Json]:
    files: list[Any] = []  # files returned by tools: sent as a user turn after the results
    for part in message.parts:
        if isinstance(part, SystemPromptPart):
            yield {"role": "system", "content": part.content}
        elif isinstance(part, UserPromptPart):
            yield {"role": "user", "content": _user_content(part.content)}
        elif isinstance(part, ToolReturnPart):
            split = getattr(part, "model_response_str_and_user_content", None)
            if split is not None:
                text, returned = split()
                files.extend(returned)
            else:
                text = part.model_response_str()
            yield {"role": "tool", "tool_call_id": part.tool_call_id, "content": text}
        elif isinstance(part, RetryPromptPart):
            if part.tool_name is None:
                yield {"role": "user", "content": part.model_response()}
            else:
                yield {
                    "role": "tool",
                    "tool_call_id": part.tool_call_id,
                    "content": part.model_response(),
                }
        else:
            raise UserError(f"LLMFastModel cannot send a {part.part_kind!r} request part")
    if files:
        yield {"role": "user", "content": _user_content(files)}


def _user_content(content: Any) -> str | list[Json]:
    if isinstance(content, str):
        return content
    parts: list[Json] = []
    for item in content:
        if isinstance(item, str):
            parts.append({"type": "text", "text": item})
            continue
        kind = getattr(item, "kind", None)
        if kind == "text-content":
            parts.append({"type": "text", "text": item.content})
        elif kind == "image-url":
            parts.append(_image(item.url, item))
        elif kind == "binary" and item.is_image:
            data = base64.b64encode(item.data).decode()
            parts.append(_image(f"data:{item.media_type};base64,{data}", item))
        elif kind == "cache-point":
            continue  # a prompt-caching marker: llmfast does not place cache breakpoints
        else:
            what = getattr(item, "media_type", None) or kind or type(item).__name__
            raise UserError(f"LLMFastModel sends text and images only, not {what!r} user content")
    return parts


def _image(url: str, item: Any) -> Json:
    image: Json = {"url": url}
    detail = (getattr(item, "vendor_metadata", None) or {}).get("detail")
    if detail is not None:
        image["detail"] = detail
    return {"type": "image_url", "image_url": image}


def _response(message: ModelResponse) -> Json | None:
    texts: list[str] = []
    calls: list[Json] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            texts.append(part.content)
        elif isinstance(part, ToolCallPart):
            calls.append(
                {
                    "id": part.tool_call_id,
                    "type": "function",
                    "function": {"name": part.tool_name, "arguments": part.args_as_json_str()},
                }
            )
        # Thinking, native-tool and file parts are not sent back: llmfast's messages
        # carry text and function calls only.
    if not texts and not calls:
        return None
    assistant: Json = {"role": "assistant", "content": "\n\n".join(texts) if texts else None}
    if calls:
        assistant["tool_calls"] = calls
    return assistant
