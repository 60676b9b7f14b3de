"""Messages, their content parts, and tools, as msgspec Structs (import them from
[llmfast.types][])."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import msgspec


class _Wire(msgspec.Struct, omit_defaults=True):
    """Base for wire structs: ``None``/default fields are left out when encoding."""


CacheMark = bool | Literal["5m", "1h"] | dict[str, Any]
"""A prompt-cache breakpoint (``cache=`` on a part, message or tool): ``True`` (the
provider's default lifetime), ``"5m"`` or ``"1h"``, or Anthropic's own
``{"type": "ephemeral", "ttl": ...}``. On the wire and in plain dicts the key is
``cache_control``. See ``docs/tokens.md``."""


def _cache_field() -> Any:
    return msgspec.field(default=None, name="cache_control")


# --- content parts ---------------------------------------------------------------


class TextPart(_Wire, tag_field="type", tag="text"):
    """A text content part."""

    text: str
    cache: CacheMark | None = _cache_field()
    """Cache the prompt up to and including this part (Anthropic; see ``CacheMark``)."""


class ImageURL(_Wire):
    """An image by URL or ``data:`` URI, with an optional detail level."""

    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Wire, tag_field="type", tag="image_url"):
    """An image content part."""

    image_url: ImageURL
    cache: CacheMark | None = _cache_field()
    """Cache the prompt up to and including this part (Anthropic; see ``CacheMark``)."""


ContentPart = TextPart | ImagePart


# --- tool calls ------------------------------------------------------------------


class FunctionCall(_Wire):
    """A function the model asked to call; ``arguments`` is a JSON string."""

    name: str
    arguments: str = ""


class ToolCall(_Wire):
    """One tool call in an assistant message."""

    id: str
    function: FunctionCall
    type: str = "function"


class FunctionDefinition(_Wire):
    """A function the model may call; ``parameters`` is a JSON Schema object."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Wire):
    """A tool offered to the model."""

    function: FunctionDefinition
    type: str = "function"
    cache: CacheMark | None = _cache_field()
    """Cache the tools up to and including this one (Anthropic; see ``CacheMark``)."""


# --- messages --------------------------------------------------------------------


class BaseMessage(_Wire):
    """What every typed message is: a list mixing message types is a
    ``list[BaseMessage]``, which every call accepts."""


class SystemMessage(BaseMessage, tag_field="role", tag="system"):
    """Instructions for the model."""

    content: str | list[TextPart]
    name: str | None = None
    cache: CacheMark | None = _cache_field()
    """Cache the prompt up to the end of this message (Anthropic; see ``CacheMark``)."""


class DeveloperMessage(BaseMessage, tag_field="role", tag="developer"):
    """Instructions for the model (OpenAI's newer name for system on reasoning models)."""

    content: str | list[TextPart]
    name: str | None = None
    cache: CacheMark | None = _cache_field()
    """Cache the prompt up to the end of this message (Anthropic; see ``CacheMark``)."""


class UserMessage(BaseMessage, tag_field="role", tag="user"):
    """A user turn: text, or a list of text and image parts."""

    content: str | list[ContentPart]
    name: str | None = None
    cache: CacheMark | None = _cache_field()
    """Cache the prompt up to the end of this message (Anthropic; see ``CacheMark``)."""


class AssistantMessage(BaseMessage, tag_field="role", tag="assistant"):
    """An earlier assistant turn, possibly with tool calls."""

    content: str | list[TextPart] | None = None
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None
    name: str | None = None
    cache: CacheMark | None = _cache_field()
    """Cache the prompt up to the end of this message (Anthropic; see ``CacheMark``)."""


class ToolMessage(BaseMessage, tag_field="role", tag="tool"):
    """The result of a tool call."""

    content: str | list[TextPart]
    tool_call_id: str
    cache: CacheMark | None = _cache_field()
    """Cache the prompt up to the end of this message (Anthropic; see ``CacheMark``)."""


Message = SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage
MessageLike = BaseMessage | Mapping[str, Any]
"""A typed message, or a plain OpenAI-style dict such as ``{"role": "user", "content": "hi"}``."""
ToolLike = Tool | Mapping[str, Any]
