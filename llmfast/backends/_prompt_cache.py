"""Prompt-cache breakpoints on the wire: typed ``cache=`` marks → Anthropic's
``cache_control``, the automatic placement (``AnthropicBackend(prompt_cache="auto")``),
and the marks taken off a request for the OpenAI-compatible backend.

Anthropic caches the prompt prefix up to each block marked ``cache_control``, in the
order tools → system → messages, with at most `MAX_BREAKPOINTS` marks a request.
OpenAI caches long prefixes by itself (``prompt_cache_key`` steers which server),
so typed marks are dropped there. See ``docs/tokens.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from llmfast.backends._convert import ENCODE, text_of
from llmfast.tokens import estimate_text
from llmfast.types import (
    AssistantMessage,
    CacheMark,
    ChatRequest,
    DeveloperMessage,
    ImagePart,
    SystemMessage,
    TextPart,
    Tool,
    ToolMessage,
    UserMessage,
)

__all__ = [
    "MAX_BREAKPOINTS",
    "anthropic_system",
    "control",
    "count_marks",
    "mark_last",
    "min_cacheable_tokens",
    "place_breakpoints",
    "without_marks",
]

MAX_BREAKPOINTS = 4
"""Anthropic's limit of ``cache_control`` blocks per request."""

_MIN_TOKENS = (  # model-name prefix → the shortest prefix Anthropic caches (tokens)
    ("claude-opus-4-6", 4096),
    ("claude-opus-4-5", 4096),
    ("claude-haiku-4-5", 4096),
    ("claude-sonnet-4-6", 2048),
    ("claude-3-5-haiku", 2048),
    ("claude-3-haiku", 2048),
)
_DEFAULT_MIN_TOKENS = 1024  # Sonnet 3.7 / 4 / 4.5, Opus 4 / 4.1, and models not listed
_EPHEMERAL = {"type": "ephemeral"}
_UNCACHEABLE = frozenset({"thinking", "redacted_thinking"})
_TYPED_MESSAGES = (SystemMessage, DeveloperMessage, UserMessage, AssistantMessage, ToolMessage)
_replace = msgspec.structs.replace


def min_cacheable_tokens(model: str) -> int:
    """The shortest prompt prefix ``model`` caches (Anthropic's prompt-caching guide);
    1024 for a model not listed. A shorter marked prefix is simply not cached."""
    name = model.removeprefix("anthropic/")
    for prefix, tokens in _MIN_TOKENS:
        if name.startswith(prefix):
            return tokens
    return _DEFAULT_MIN_TOKENS


def control(mark: CacheMark) -> dict[str, Any] | None:
    """A ``cache=`` mark as Anthropic's ``cache_control`` (``None`` for ``False``)."""
    if mark is True:
        return _EPHEMERAL
    if mark is False:
        return None
    if isinstance(mark, str):
        return {"type": "ephemeral", "ttl": mark}
    return mark


def mark_last(blocks: list[dict[str, Any]], mark: CacheMark | None) -> None:
    """Put ``mark`` on the last of a message's wire blocks (a message-level ``cache=``)."""
    wire = None if mark is None else control(mark)
    if wire is not None and blocks:
        blocks[-1] = {**blocks[-1], "cache_control": wire}


def anthropic_system(
    messages: Sequence[SystemMessage | DeveloperMessage],
) -> str | list[dict[str, Any]] | None:
    """The Messages API ``system``: the texts joined with a blank line, or, when a
    message or part is marked, one ``text`` block per part with its marks."""
    if not messages:
        return None
    if not any(_marked(message) for message in messages):
        return "\n\n".join(text_of(message.content) for message in messages)
    blocks: list[dict[str, Any]] = []
    for message in messages:
        content = message.content
        parts = [TextPart(content)] if isinstance(content, str) else content
        mine = [_text_block(part) for part in parts if part.text]
        mark_last(mine, message.cache)
        blocks.extend(mine)
    return blocks


def _marked(message: SystemMessage | DeveloperMessage) -> bool:
    if message.cache is not None:
        return True
    content = message.content
    return not isinstance(content, str) and any(part.cache is not None for part in content)


def _text_block(part: TextPart) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": part.text}
    wire = None if part.cache is None else control(part.cache)
    if wire is not None:
        block["cache_control"] = wire
    return block


# -- automatic placement ---------------------------------------------------------------


def count_marks(wire: Mapping[str, Any]) -> int:
    """How many blocks of a Messages API body carry ``cache_control``."""
    count = 0
    tools = wire.get("tools")
    if tools:
        count += sum(map(_has_mark, tools))
    system = wire.get("system")
    if type(system) is list:
        count += sum(map(_has_mark, system))
    for message in wire.get("messages") or ():
        content = message.get("content") if _is_map(message) else None
        if type(content) is list:
            count += sum(map(_has_mark, content))
    return count


def _is_map(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)


def _has_mark(block: Any) -> bool:
    return _is_map(block) and block.get("cache_control") is not None


def place_breakpoints(
    wire: dict[str, Any],
    *,
    mark: dict[str, Any] | None = None,
    min_tokens: int = 0,
    limit: int = MAX_BREAKPOINTS,
) -> dict[str, Any]:
    """Mark the longest stable prefixes of a Messages API body, in place.

    The candidates, in prefix order: the end of the tools, the end of the system
    prompt, and the end of the conversation before its last message (the new user
    turn). Marks already in the body count against ``limit``; a candidate already
    marked, not markable (an empty or thinking block) or estimated shorter than
    ``min_tokens`` is passed over; the latest (longest) candidates win the free
    slots. Lists and blocks are copied before they change (they may be the
    caller's own, from ``extra_body``). Idempotent.
    """
    free = limit - count_marks(wire)
    if free <= 0:
        return wire
    wire_mark = mark or _EPHEMERAL
    tokens = 0
    chosen: list[tuple[str, int]] = []  # (where, index): "tools", "system" or "messages"
    tools = wire.get("tools")
    if isinstance(tools, list) and tools:
        tokens += estimate_text(ENCODE(tools).decode())
        if tokens >= min_tokens and _markable_tool(tools[-1]):
            chosen.append(("tools", len(tools) - 1))
    system = wire.get("system")
    if system:
        tokens += _estimate(system)
        if tokens >= min_tokens and _markable_content(system):
            chosen.append(("system", 0))
    messages = wire.get("messages")
    if isinstance(messages, list) and len(messages) >= 2:
        chars = 0  # string contents, the usual case, summed in one pass
        for message in messages[:-1]:
            content = message.get("content") if _is_map(message) else None
            if type(content) is str:
                chars += len(content)
            else:
                tokens += _estimate(content)
        tokens += -(-chars // 4)  # as estimate_text counts: four characters a token
        last = messages[-2]
        if tokens >= min_tokens and _is_map(last) and _markable_content(last.get("content")):
            chosen.append(("messages", len(messages) - 2))
    for where, index in chosen[-free:] if free < len(chosen) else chosen:
        _apply(wire, where, index, wire_mark)
    return wire


def _estimate(content: Any) -> int:
    if type(content) is str:
        return estimate_text(content)
    total = 0
    for block in content if type(content) is list else ():
        if _is_map(block):
            text = block.get("text")
            total += estimate_text(text) if type(text) is str else _block_tokens(block)
    return total


def _block_tokens(block: Mapping[str, Any]) -> int:
    if block.get("type") == "image":
        return 85  # as the rate limiter's estimate counts an image
    return estimate_text(ENCODE(block).decode())


def _markable_tool(tool: Any) -> bool:
    return _is_map(tool) and tool.get("cache_control") is None


def _markable_content(content: Any) -> bool:
    """True when the last block of ``content`` may take a new mark."""
    if isinstance(content, str):
        return bool(content)
    if not isinstance(content, list) or not content:
        return False
    block = content[-1]
    if not _is_map(block) or block.get("cache_control") is not None:
        return False
    if block.get("type") in _UNCACHEABLE:
        return False
    return block.get("type") != "text" or bool(block.get("text"))


def _apply(wire: dict[str, Any], where: str, index: int, mark: dict[str, Any]) -> None:
    if where == "tools":
        tools = wire["tools"] = list(wire["tools"])
        tools[index] = {**tools[index], "cache_control": mark}
    elif where == "system":
        wire["system"] = _marked_content(wire["system"], mark)
    else:
        messages = wire["messages"] = list(wire["messages"])
        message = messages[index]
        messages[index] = {**message, "content": _marked_content(message["content"], mark)}


def _marked_content(content: Any, mark: dict[str, Any]) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content, "cache_control": mark}]
    blocks = list(content)
    blocks[-1] = {**blocks[-1], "cache_control": mark}
    return blocks


# -- the OpenAI-compatible backend -----------------------------------------------------


def without_marks(body: ChatRequest) -> ChatRequest:
    """``body`` with the typed ``cache=`` marks dropped (``body`` itself when it has
    none: plain dicts are sent as given)."""
    messages = list(body.messages)
    changed = False
    for index, message in enumerate(messages):
        if isinstance(message, _TYPED_MESSAGES):
            bare = _bare_message(message)
            if bare is not message:
                messages[index] = bare
                changed = True
    tools = body.tools
    if tools and any(type(tool) is Tool and tool.cache is not None for tool in tools):
        tools = [_replace(t, cache=None) if type(t) is Tool else t for t in tools]
        changed = True
    if not changed:
        return body
    return _replace(body, messages=messages, tools=tools)


def _bare_message(message: Any) -> Any:
    content = message.content
    parts = None
    if isinstance(content, list) and any(_part_marked(part) for part in content):
        parts = list(_bare_parts(content))
    if parts is None and message.cache is None:
        return message
    return _replace(message, cache=None, content=content if parts is None else parts)


def _part_marked(part: Any) -> bool:
    return type(part) in (TextPart, ImagePart) and part.cache is not None


def _bare_parts(parts: Iterable[Any]) -> Iterable[Any]:
    for part in parts:
        yield _replace(part, cache=None) if _part_marked(part) else part
