"""pydantic-ai's model settings and request parameters -> the keywords of ``client.chat``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic_ai.exceptions import UserError
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.profiles import ModelProfile
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import ToolDefinition

from llmfast.integrations.pydantic_ai._messages import map_tool

try:  # the helper pydantic-ai's own adapters resolve `tool_choice` with
    from pydantic_ai.models._tool_choice import resolve_tool_choice
except ImportError:  # pragma: no cover - older pydantic-ai
    resolve_tool_choice = None  # type: ignore[assignment]

__all__ = ["LLMFastModelSettings", "call_options", "unsupported_for"]


class LLMFastModelSettings(ModelSettings, total=False):
    """pydantic-ai's `ModelSettings` plus llmfast's own."""

    llmfast_cache: Literal["use", "refresh", "bypass"]
    """Steers a [`Cache`][llmfast.layers.Cache] layer for this request (``cache=`` of
    [`Client.chat`][llmfast.Client.chat])."""


# Settings sent as the ChatRequest field of the same (or the given) name.
_SAME = (
    ("max_tokens", "max_tokens"),
    ("temperature", "temperature"),
    ("top_p", "top_p"),
    ("seed", "seed"),
    ("presence_penalty", "presence_penalty"),
    ("frequency_penalty", "frequency_penalty"),
    ("stop_sequences", "stop"),
)
# What each backend refuses (llmfast raises UnsupportedParameterError): not sent there.
_REFUSED: dict[str, frozenset[str]] = {
    "anthropic": frozenset({"seed", "presence_penalty", "frequency_penalty", "logit_bias"}),
    "gemini": frozenset({"parallel_tool_calls", "logit_bias"}),
    "ollama": frozenset({"parallel_tool_calls", "logit_bias"}),
}
_NO_TOOL_CHOICE = frozenset({"ollama"})
"""Backends with no ``tool_choice`` (only the model's own choice)."""
_NEVER = frozenset({"top_k", "max_retries", "service_tier", "citations"})
"""Settings llmfast has no field for (retries are the Client's ``Retry`` layer)."""
_EFFORT = {"minimal": "minimal", "low": "low", "medium": "medium", "high": "high"}


def unsupported_for(kind: str) -> frozenset[str]:
    """The generic settings a request to a backend of ``kind`` ignores."""
    return _NEVER | _REFUSED.get(kind, frozenset())


def call_options(
    kind: str,
    settings: ModelSettings,
    params: ModelRequestParameters,
    profile: ModelProfile,
) -> dict[str, Any]:
    """The keyword arguments of ``client.chat``/``client.stream`` for one model request."""
    refused = _REFUSED.get(kind, frozenset())
    options: dict[str, Any] = {}
    for name, field in _SAME:
        value = settings.get(name)
        if value is not None and name not in refused:
            options[field] = value
    tools, choice = _tools(settings, params)
    if kind in _NO_TOOL_CHOICE and choice is not None:
        tools = [] if choice == "none" else tools  # the server's choice is always "auto"
        choice = None
    if tools:
        options["tools"] = tools
        if choice is not None:
            options["tool_choice"] = choice
        parallel = settings.get("parallel_tool_calls")
        if parallel is not None and "parallel_tool_calls" not in refused:
            options["parallel_tool_calls"] = parallel
    response_format = _response_format(params, profile)
    if response_format is not None:
        options["response_format"] = response_format
    effort = _effort(getattr(params, "thinking", None))
    if effort is not None:
        options["reasoning_effort"] = effort
    extra = _extra_body(settings, refused)
    if extra:
        options["extra_body"] = extra
    headers = settings.get("extra_headers")
    if headers:
        options["headers"] = dict(headers)
    timeout = settings.get("timeout")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise UserError("LLMFastModel takes `timeout` in seconds (a number)")
        options["timeout"] = float(timeout)
    cache = settings.get("llmfast_cache")
    if cache is not None:
        options["cache"] = cache
    return options


def _tools(
    settings: ModelSettings, params: ModelRequestParameters
) -> tuple[list[dict[str, Any]], Any]:
    """The tools to offer and the ``tool_choice`` (``None``: the provider's default)."""
    if not params.function_tools and not params.output_tools:
        return [], None  # skips resolving visibility (most of this function's cost)
    declared = getattr(params, "declared_tool_defs", None)
    defs: dict[str, ToolDefinition] = (
        dict(declared)
        if declared is not None
        else {t.name: t for t in [*params.function_tools, *params.output_tools]}
    )
    if not defs:
        return [], None
    if resolve_tool_choice is None:  # pragma: no cover - older pydantic-ai
        choice: Any = "auto" if params.allow_text_output else "required"
    else:
        choice = resolve_tool_choice(settings, params)
    if isinstance(choice, tuple):
        mode, names = choice
        if mode == "required" and len(names) == 1:
            (name,) = names
            choice = {"type": "function", "function": {"name": name}}
        else:
            choice = mode
        defs = {name: tool for name, tool in defs.items() if name in names}
    if choice == "required" and len(defs) == 1:  # the same, and what more servers honour
        (name,) = defs
        choice = {"type": "function", "function": {"name": name}}
    return [map_tool(tool) for tool in defs.values()], None if choice == "auto" else choice


def _response_format(params: ModelRequestParameters, profile: ModelProfile) -> Any:
    if params.output_mode == "native":
        output = params.output_object
        if output is None:  # pragma: no cover - pydantic-ai always sets it in native mode
            raise UserError("native output without an output object")
        schema: dict[str, Any] = {
            "name": output.name or "final_result",
            "schema": output.json_schema,
        }
        if output.description:
            schema["description"] = output.description
        if output.strict is not None:
            schema["strict"] = output.strict
        return {"type": "json_schema", "json_schema": schema}
    if params.output_mode == "prompted" and profile.get("supports_json_object_output", False):
        return {"type": "json_object"}
    return None


def _effort(thinking: Any) -> str | None:
    """pydantic-ai's unified ``thinking`` (when the profile enables it) as ``reasoning_effort``."""
    if thinking is None or thinking is False:
        return None
    if thinking is True:
        return "medium"
    return _EFFORT.get(str(thinking), "high")


def _extra_body(settings: ModelSettings, refused: frozenset[str]) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    logit_bias = settings.get("logit_bias")
    if logit_bias and "logit_bias" not in refused:
        extra["logit_bias"] = logit_bias
    given = settings.get("extra_body")
    if given is not None:
        if not isinstance(given, Mapping):
            raise UserError("LLMFastModel takes `extra_body` as a mapping")
        extra.update(given)
    return extra
