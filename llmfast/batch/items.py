"""Batch items: what one item of ``client.map`` may be, and its normalization into a
``ChatRequest`` with messages that name the item when something is wrong."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from llmfast.errors import ConfigurationError
from llmfast.types import ChatRequest, MessageLike

__all__ = ["NO_MODEL", "ROLES", "BatchItem", "to_chat_request"]

BatchItem = str | Sequence[MessageLike] | ChatRequest | Mapping[str, Any]
"""One request of a batch: a prompt string (one user message), a list of messages, a
whole ``ChatRequest``, or a dict of ``client.chat`` keywords with ``messages`` — or with
``prompt`` (a user message) and an optional ``system`` message instead — and optionally
``model``."""

NO_MODEL = 'no model: give one to the batch or the Client, or put "model" in the item'
ROLES = ("system", "developer", "user", "assistant", "tool")
"""The message roles a dict message may have (those of the typed messages)."""
_ROLE_SET = frozenset(ROLES)


def _check_struct() -> type[msgspec.Struct]:
    """A struct with ``ChatRequest``'s fields and types (messages and tools loosened),
    used to validate dict items with clear messages."""
    fields = []
    for field in msgspec.structs.fields(ChatRequest):
        kind = Any if field.name in ("messages", "tools") else field.type
        fields.append((field.name, kind) if field.required else (field.name, kind, None))
    return msgspec.defstruct("ChatRequest", fields, kw_only=True, forbid_unknown_fields=True)


_CHECK = _check_struct()


def to_chat_request(item: BatchItem, defaults: Mapping[str, Any], index: int) -> ChatRequest:
    """Normalize one batch item into a ``ChatRequest`` (``defaults``: ``model`` and
    ``client.chat`` keywords); raises ``ConfigurationError`` naming the item."""
    if type(item) is ChatRequest:
        return item
    if isinstance(item, str):
        fields: dict[str, Any] = {**defaults, "messages": [{"role": "user", "content": item}]}
    elif isinstance(item, Mapping):
        fields = {**defaults, **item}
        if "prompt" in fields or "system" in fields:
            prompt, system = fields.pop("prompt", None), fields.pop("system", None)
            if "messages" in fields:
                raise ConfigurationError(f"item {index}: give either prompt or messages, not both")
            if not isinstance(prompt, str) or not isinstance(system, (str, type(None))):
                raise ConfigurationError(f"item {index}: prompt (and system) must be strings")
            head: list[Any] = [] if system is None else [{"role": "system", "content": system}]
            fields["messages"] = [*head, {"role": "user", "content": prompt}]
        elif "messages" not in fields:
            raise ConfigurationError(f'item {index}: needs "messages" or "prompt"')
    elif isinstance(item, Sequence) and not isinstance(item, bytes):
        fields = {**defaults, "messages": item}
    else:
        raise ConfigurationError(
            f"item {index}: expected a prompt string, a list of messages, a ChatRequest or "
            f"a dict, got {type(item).__name__}"
        )
    if not fields.get("model"):
        raise ConfigurationError(f"item {index}: {NO_MODEL}")
    _check_messages(fields["messages"], index)
    try:
        checked = msgspec.convert(fields, _CHECK)
    except msgspec.ValidationError as exc:
        raise ConfigurationError(f"item {index}: {exc}") from None
    return ChatRequest(**msgspec.structs.asdict(checked))


def _check_messages(messages: Any, index: int) -> None:
    if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)) or not messages:
        raise ConfigurationError(f"item {index}: messages must be a non-empty list of messages")
    for number, message in enumerate(messages):
        if isinstance(message, msgspec.Struct):
            continue
        if not isinstance(message, Mapping) or "role" not in message:
            raise ConfigurationError(
                f"item {index}: message {number} must be an object with a role"
            )
        role = message["role"]
        if not isinstance(role, str) or role not in _ROLE_SET:
            raise ConfigurationError(
                f"item {index}: message {number} has an unknown role {repr(role)[:40]} "
                f"(expected one of {', '.join(ROLES)})"
            )
