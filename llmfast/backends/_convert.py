"""Mapping helpers shared by the non-OpenAI backends.

Requests carry OpenAI-shaped messages (typed, or plain dicts); these helpers turn them
into typed messages once, check parameters a provider lacks, and read the pieces every
wire format needs (text, images, tool-call arguments).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, get_args

import msgspec

from llmfast.errors import ConfigurationError, UnsupportedParameterError
from llmfast.types import (
    ChatRequest,
    ImagePart,
    Message,
    MessageLike,
    TextPart,
    Tool,
    ToolLike,
)

__all__ = [
    "ENCODE",
    "check_unsupported",
    "content_parts",
    "data_url",
    "merge_extra",
    "now",
    "parse_arguments",
    "text_of",
    "to_messages",
    "to_tools",
    "tool_names_by_id",
]

ENCODE = msgspec.json.Encoder().encode
_decode_args = msgspec.json.Decoder().decode
_MESSAGE_TYPES: frozenset[Any] = frozenset(get_args(Message))
_decode_messages = msgspec.json.Decoder(list[Message]).decode


def to_messages(messages: Sequence[MessageLike]) -> list[Message]:
    """Typed messages from typed ones or OpenAI-style dicts.

    Encoded and decoded by a decoder built once: ``msgspec.convert`` analyses the
    ``list[Message]`` union on every call (~45 µs for one message, against ~0.5 µs)."""
    if all(type(m) in _MESSAGE_TYPES for m in messages):
        return list(messages)  # type: ignore[arg-type]
    try:
        return _decode_messages(ENCODE(messages))
    except (msgspec.ValidationError, msgspec.DecodeError, TypeError) as exc:
        raise ConfigurationError(f"invalid message: {exc}") from exc


def to_tools(tools: Sequence[ToolLike]) -> list[Tool]:
    """Typed tools from typed ones or OpenAI-style dicts."""
    try:
        return [t if type(t) is Tool else msgspec.convert(t, Tool) for t in tools]
    except msgspec.ValidationError as exc:
        raise ConfigurationError(f"invalid tool: {exc}") from exc


def text_of(content: str | Sequence[TextPart | ImagePart] | None) -> str:
    """The text of a message's content (text parts joined; images skipped)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content if type(part) is TextPart)


def content_parts(content: str | Sequence[TextPart | ImagePart]) -> Sequence[TextPart | ImagePart]:
    """The content as a list of parts (a string becomes one text part)."""
    return [TextPart(text=content)] if isinstance(content, str) else content


def data_url(url: str) -> tuple[str, str] | None:
    """``(media_type, base64_data)`` of a base64 ``data:`` URL, else ``None``."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        raise ConfigurationError(
            "an image data URL must be base64-encoded (data:<type>;base64,...)"
        )
    return header[: -len(";base64")] or "application/octet-stream", data


def parse_arguments(arguments: str, provider: str) -> Any:
    """A tool call's JSON ``arguments`` string as an object (providers that want objects)."""
    if not arguments:
        return {}
    try:
        return _decode_args(arguments)
    except msgspec.DecodeError as exc:
        raise ConfigurationError(
            f"{provider} needs tool-call arguments as a JSON object; got {arguments[:100]!r}"
        ) from exc


def tool_names_by_id(messages: Iterable[Message]) -> dict[str, str]:
    """Tool-call id → function name over every assistant message (later ones win)."""
    names: dict[str, str] = {}
    for message in messages:
        calls = getattr(message, "tool_calls", None)
        if calls:
            for call in calls:
                names[call.id] = call.function.name
    return names


def check_unsupported(body: ChatRequest, provider: str, names: Iterable[str]) -> None:
    """Raise ``UnsupportedParameterError`` for the first of ``names`` that is set.

    ``n`` is accepted when 1, ``logprobs`` and ``parallel_tool_calls`` when not asking
    for anything (``False`` / ``True``).
    """
    for name in names:
        value = getattr(body, name)
        if value is None:
            continue
        if (
            (name == "n" and value == 1)
            or (name == "logprobs" and value is False)
            or (name == "parallel_tool_calls" and value is True)
        ):
            continue
        raise UnsupportedParameterError(name, provider)


def merge_extra(
    wire: dict[str, Any],
    extra: Mapping[str, Any] | None,
    nested: Iterable[str] = (),
) -> dict[str, Any]:
    """Merge ``extra_body`` into the wire body: keys in ``nested`` (dicts such as Ollama's
    ``options``) are merged one level deep, every other key replaces what the mapping
    produced. ``stream`` may not be set this way."""
    if not extra:
        return wire
    if "stream" in extra:
        raise ConfigurationError("extra_body may not set 'stream'; use client.stream()")
    for key, value in extra.items():
        current = wire.get(key)
        if key in nested and isinstance(current, dict) and isinstance(value, Mapping):
            wire[key] = {**current, **value}
        else:
            wire[key] = value
    return wire


def now() -> int:
    """The ``created`` timestamp for providers that send none (epoch seconds)."""
    return int(time.time())
