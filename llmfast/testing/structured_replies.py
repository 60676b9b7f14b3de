"""What the test server answers a structured request with when nothing is scripted.

A request that asks for structured output — OpenAI's ``response_format``
``json_schema``, Gemini's ``responseJsonSchema``/``responseSchema``, Ollama's ``format``
schema — gets a text reply holding a value valid under the schema; a request that
forces one tool (``tool_choice`` naming a function, Anthropic's ``{"type": "tool"}``,
Gemini's ``allowedFunctionNames``) gets a call of that tool with valid arguments. The
value comes from [schema_value][llmfast.testing.schema_values.schema_value], seeded by
the request number, so a test sees the same value every run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from llmfast.testing.replies import Reply
from llmfast.testing.schema_values import schema_value

__all__ = ["structured_reply"]


def structured_reply(fmt: str, body: Mapping[str, Any], seed: int) -> Reply | None:
    """The reply to a structured request in wire format ``fmt``, or ``None`` when the
    request asks for no structure."""
    found = _wanted(fmt, body)
    if found is None:
        return None
    kind, name, schema = found
    value = schema_value(schema, seed, nulls=False)
    if kind == "tool":
        return Reply.tool_calls([{"name": name, "arguments": value}])
    return Reply.text(json.dumps(value))


def _wanted(fmt: str, body: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]] | None:
    if fmt == "openai":
        return _openai(body)
    if fmt == "anthropic":
        return _anthropic(body)
    if fmt == "ollama":
        schema = body.get("format")
        if isinstance(schema, dict):
            return "text", "", schema
        forced = _only_tool(body.get("tools"))
        return forced if forced is not None else None
    if fmt == "gemini":
        return _gemini(body)
    if fmt == "openai-responses":
        return _responses(body)
    return None


def _responses(body: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]] | None:
    text_format = (body.get("text") or {}).get("format") or {}
    if text_format.get("type") == "json_schema" and isinstance(text_format.get("schema"), dict):
        return "text", "", text_format["schema"]
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function":
        for item in body.get("tools") or ():
            if isinstance(item, dict) and item.get("name") == choice.get("name"):
                return "tool", str(item["name"]), item.get("parameters") or {}
    return None


def _openai(body: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]] | None:
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            return "text", "", schema
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        for item in body.get("tools") or ():
            function = item.get("function") if isinstance(item, dict) else None
            if isinstance(function, dict) and function.get("name") == name:
                return "tool", str(name), function.get("parameters") or {}
    return None


def _anthropic(body: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]] | None:
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool":
        for item in body.get("tools") or ():
            if isinstance(item, dict) and item.get("name") == choice.get("name"):
                return "tool", str(item["name"]), item.get("input_schema") or {}
    return None


def _gemini(body: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]] | None:
    config = body.get("generationConfig") or {}
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    if isinstance(schema, dict):
        return "text", "", schema
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    allowed = calling.get("allowedFunctionNames") or []
    if calling.get("mode") == "ANY" and len(allowed) == 1:
        for group in body.get("tools") or ():
            for declaration in group.get("functionDeclarations") or ():
                if declaration.get("name") == allowed[0]:
                    schema = declaration.get("parametersJsonSchema") or declaration.get(
                        "parameters"
                    )
                    return "tool", allowed[0], schema or {}
    return None


def _only_tool(tools: Any) -> tuple[str, str, dict[str, Any]] | None:
    if isinstance(tools, list) and len(tools) == 1 and isinstance(tools[0], dict):
        function = tools[0].get("function") or {}
        if isinstance(function, dict) and "name" in function:
            return "tool", str(function["name"]), function.get("parameters") or {}
    return None
