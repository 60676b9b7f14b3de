"""What ``bind_tools`` sends: LangChain tools, pydantic models, functions, JSON Schema or
OpenAI/Anthropic tool dicts, llmfast's own [FunctionTool][llmfast.FunctionTool] and
[Tool][llmfast.Tool] -> llmfast tools; LangChain's ``tool_choice`` spellings -> llmfast's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel

from llmfast.errors import ConfigurationError
from llmfast.structured.tools import FunctionTool
from llmfast.types import Tool

__all__ = ["ToolSpec", "to_tool_choice", "to_tools"]

ToolSpec = Mapping[str, Any] | type[BaseModel] | Callable[..., Any] | BaseTool | Tool
"""Anything ``bind_tools`` takes."""


def to_tools(tools: Sequence[Any], *, strict: bool | None = None) -> list[Any]:
    """llmfast tools for ``tools``: typed ones kept, the rest as OpenAI-style dicts."""
    out: list[Any] = []
    for item in tools:
        if isinstance(item, Tool):
            out.append(item)
        elif isinstance(item, FunctionTool):
            out.append(item.definition)
        elif isinstance(item, Mapping) and item.get("type", "function") != "function":
            out.append(item)  # a provider's built-in tool, e.g. {"type": "web_search_..."}
        else:
            out.append(convert_to_openai_tool(item, strict=strict))
    return out


def _name(tool: Any) -> str | None:
    if isinstance(tool, Tool):
        return tool.function.name
    if isinstance(tool, Mapping):
        function = tool.get("function")
        if isinstance(function, Mapping):
            return str(function.get("name"))
        name = tool.get("name")
        return None if name is None else str(name)
    return None


def to_tool_choice(choice: Any, tools: Sequence[Any]) -> str | dict[str, Any] | None:
    """llmfast's ``tool_choice`` for LangChain's: ``"any"``/``"required"`` (some tool),
    ``"auto"``, ``"none"``, a tool's name, ``True`` (the only tool), or a dict as given."""
    if choice is None or choice is False:
        return None
    if choice in ("auto", "none", "required"):
        return str(choice)
    if choice == "any":
        return "required"
    if choice is True:
        if len(tools) != 1:
            raise ConfigurationError(
                f"tool_choice=True forces the only tool, but {len(tools)} tools are bound"
            )
        choice = _name(tools[0])
    if isinstance(choice, str):
        names = [_name(t) for t in tools]
        if choice not in names:
            raise ConfigurationError(
                f"tool_choice {choice!r} names no bound tool (bound: {', '.join(map(str, names))})"
            )
        return {"type": "function", "function": {"name": choice}}
    if isinstance(choice, Mapping):
        return dict(choice)
    raise ConfigurationError(f"unknown tool_choice {choice!r}")
