"""The shared ``ChatRequest`` → an OpenAI Responses API request body.

Leading system/developer messages become ``instructions``; user turns become input
messages (``input_text``/``input_image`` parts); assistant turns become assistant
messages and one ``function_call`` item per tool call (``call_id`` kept); tool results
become ``function_call_output`` items. A plain dict with a ``type`` and no ``role``
(an output item of an earlier response: ``reasoning`` with its ``encrypted_content``,
``function_call``, ``message``...) is passed as an input item as given. Function tools
are flattened, ``tool_choice`` translated, ``response_format`` becomes ``text.format``,
``max_tokens``/``max_completion_tokens`` ``max_output_tokens``, ``reasoning_effort``
``reasoning.effort``; ``extra_body`` (``store``, ``previous_response_id``,
``background``, ``include``, ``metadata``, ``truncation``...) is merged last, ``reasoning``
and ``text`` one level deep.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llmfast.backends._convert import check_unsupported, merge_extra, text_of, to_messages, to_tools
from llmfast.backends._responses_wire import PROVIDER
from llmfast.errors import ConfigurationError, UnsupportedParameterError
from llmfast.types import (
    AssistantMessage,
    ChatRequest,
    DeveloperMessage,
    ImagePart,
    MessageLike,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
)

__all__ = ["wire_body"]

_UNSUPPORTED = ("n", "seed", "stop", "logprobs")
_NESTED = ("reasoning", "text")


def wire_body(body: ChatRequest) -> dict[str, Any]:
    """The Responses API body for ``body`` (without ``stream``)."""
    check_unsupported(body, PROVIDER, _UNSUPPORTED)
    instructions, items = _input(body.messages)
    wire: dict[str, Any] = {"model": body.model, "input": items}
    if instructions is not None:
        wire["instructions"] = instructions
    max_tokens = body.max_tokens or body.max_completion_tokens
    if max_tokens is not None:
        wire["max_output_tokens"] = max_tokens
    for name in ("temperature", "top_p", "top_logprobs", "user", "parallel_tool_calls"):
        value = getattr(body, name)
        if value is not None:
            wire[name] = value
    for name in ("presence_penalty", "frequency_penalty"):
        value = getattr(body, name)
        if value is not None:
            wire[name] = value
    if body.reasoning_effort is not None:
        wire["reasoning"] = {"effort": body.reasoning_effort}
    if body.tools:
        wire["tools"] = _tools(body.tools)
    if body.tool_choice is not None:
        wire["tool_choice"] = _tool_choice(body.tool_choice)
    if body.response_format is not None:
        wire["text"] = {"format": text_format(body.response_format)}
    return merge_extra(wire, body.extra_body, _NESTED)


def text_format(response_format: Mapping[str, Any]) -> dict[str, Any]:
    """A chat ``response_format`` as a Responses ``text.format``."""
    kind = response_format.get("type")
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, Mapping) or "schema" not in spec:
            raise ConfigurationError("response_format json_schema needs a json_schema.schema")
        out: dict[str, Any] = {"type": "json_schema", "name": spec.get("name") or "output"}
        for key in ("description", "schema", "strict"):
            if spec.get(key) is not None:
                out[key] = spec[key]
        return out
    if kind in ("json_object", "text"):
        return {"type": kind}
    raise UnsupportedParameterError("response_format", PROVIDER, f"unknown type {kind!r}")


def _input(messages: Sequence[MessageLike]) -> tuple[str | None, list[Any]]:
    instructions: list[str] = []
    items: list[Any] = []
    for given in messages:
        if isinstance(given, Mapping) and "type" in given and "role" not in given:
            items.append(given)  # an input item as the API takes it (e.g. a reasoning item)
            continue
        message = to_messages([given])[0]
        kind = type(message)
        if kind is SystemMessage or kind is DeveloperMessage:
            text = text_of(message.content)
            if not items:
                instructions.append(text)
            else:
                role = "system" if kind is SystemMessage else "developer"
                items.append({"role": role, "content": text})
        elif kind is UserMessage:
            assert isinstance(message, UserMessage)
            items.append({"role": "user", "content": _user_content(message.content)})
        elif kind is ToolMessage:
            assert isinstance(message, ToolMessage)
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message.tool_call_id,
                    "output": text_of(message.content),
                }
            )
        else:
            assert isinstance(message, AssistantMessage)
            text = text_of(message.content)
            if text:
                items.append({"role": "assistant", "content": text})
            if message.refusal:
                part = {"type": "refusal", "refusal": message.refusal}
                items.append({"type": "message", "role": "assistant", "content": [part]})
            items.extend(
                {
                    "type": "function_call",
                    "call_id": call.id,
                    "name": call.function.name,
                    "arguments": call.function.arguments or "{}",
                }
                for call in message.tool_calls or ()
            )
    return ("\n\n".join(instructions) if instructions else None), items


def _user_content(content: str | Sequence[TextPart | ImagePart]) -> Any:
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for part in content:
        if type(part) is TextPart:
            parts.append({"type": "input_text", "text": part.text})
        else:
            assert isinstance(part, ImagePart)
            image: dict[str, Any] = {"type": "input_image", "image_url": part.image_url.url}
            image["detail"] = part.image_url.detail or "auto"
            parts.append(image)
    return parts


def _tools(tools: Sequence[Any]) -> list[Any]:
    """Chat-style function tools flattened; native tool dicts (web_search...) as given."""
    out: list[Any] = []
    for tool in tools:
        if isinstance(tool, Mapping) and "function" not in tool:
            out.append(tool)
            continue
        function = to_tools([tool])[0].function
        spec: dict[str, Any] = {"type": "function", "name": function.name}
        if function.description is not None:
            spec["description"] = function.description
        spec["parameters"] = function.parameters or {"type": "object", "properties": {}}
        # The Responses API makes function tools strict unless told; chat completions
        # does not: keep the chat meaning (strict only when asked for).
        spec["strict"] = bool(function.strict)
        out.append(spec)
    return out


def _tool_choice(choice: str | Mapping[str, Any]) -> Any:
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise UnsupportedParameterError("tool_choice", PROVIDER, f"unknown value {choice!r}")
        return choice
    function = choice.get("function")
    if isinstance(function, Mapping):
        return {"type": "function", "name": function["name"]}
    return dict(choice)  # already in the Responses shape
