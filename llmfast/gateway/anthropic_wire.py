"""Anthropic's Messages API, spoken by the gateway: a ``POST /v1/messages`` body becomes
llmfast's shared request, and the shared results become Anthropic's message and its
event stream — so an Anthropic-SDK client can reach any deployment.

Mapped: ``system`` (text or text blocks), text and image blocks, ``tool_use`` and
``tool_result`` turns, tools and ``tool_choice``, ``max_tokens``, ``stop_sequences``,
``temperature``, ``top_p``, ``metadata.user_id``; anything else travels on as
``extra_body``. Only choice 0 is answered (Anthropic has no ``n``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from llmfast.gateway.answers import Failure
from llmfast.gateway.openai_routes import BadInput, json_object, typed_fields
from llmfast.types import ChatCompletion, ChatCompletionChunk, ChatRequest, Usage

__all__ = ["StreamTranslator", "anthropic_error", "message_json", "parse_messages"]

_encode = msgspec.json.Encoder().encode
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_TYPED = ("max_tokens", "temperature", "top_p")


class _MessagesBody(msgspec.Struct, kw_only=True):
    model: str
    messages: list[dict[str, Any]]
    max_tokens: int
    system: str | list[dict[str, Any]] | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    stream: bool = False


_FIELDS = frozenset(_MessagesBody.__struct_fields__)


def parse_messages(raw: bytes) -> tuple[ChatRequest, bool]:
    """``(request, stream)`` from a Messages API body."""
    data = json_object(raw)
    body, extra = typed_fields(data, _FIELDS, _MessagesBody)
    if not body.messages:
        raise BadInput(400, "messages: at least one message is required", "invalid_request")
    messages: list[dict[str, Any]] = []
    if body.system:
        messages.append({"role": "system", "content": _text_of(body.system, "system")})
    for message in body.messages:
        messages.extend(_turn(message))
    user = (body.metadata or {}).get("user_id")
    request = ChatRequest(
        model=body.model,
        messages=messages,
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=body.stop_sequences,
        tools=[_tool(t) for t in body.tools] if body.tools else None,
        tool_choice=_tool_choice(body.tool_choice),
        user=user if isinstance(user, str) else None,
        extra_body=extra or None,
    )
    return request, body.stream


def _bad(message: str) -> BadInput:
    return BadInput(400, message, "invalid_request")


def _text_of(content: str | list[dict[str, Any]], where: str) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for block in content:
        if block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise _bad(f"{where}: only text blocks are accepted here")
        texts.append(block["text"])
    return "\n".join(texts)


def _turn(message: dict[str, Any]) -> Iterator[dict[str, Any]]:
    role, content = message.get("role"), message.get("content")
    if role not in ("user", "assistant"):
        raise _bad(f"messages: role must be 'user' or 'assistant', got {role!r}")
    if isinstance(content, str):
        yield {"role": role, "content": content}
        return
    if not isinstance(content, list):
        raise _bad("messages: content must be a string or a list of blocks")
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": str(block.get("text", ""))})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block)}})
        elif kind == "tool_use" and role == "assistant":
            arguments = _encode(block.get("input") or {}).decode()
            function = {"name": block.get("name"), "arguments": arguments}
            calls.append({"id": block.get("id"), "type": "function", "function": function})
        elif kind == "tool_result" and role == "user":
            result = block.get("content", "")
            text = result if isinstance(result, str) else _text_of(result, "tool_result")
            yield {"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text}
        elif kind in ("thinking", "redacted_thinking"):
            continue  # a previous turn's reasoning: no other provider takes it back
        else:
            raise _bad(f"messages: unsupported content block {kind!r} in a {role} turn")
    if role == "assistant":
        joined = "".join(p["text"] for p in parts if p["type"] == "text") or None
        if parts or calls:
            turn: dict[str, Any] = {"role": "assistant", "content": joined}
            if calls:
                turn["tool_calls"] = calls
            yield turn
    elif parts:
        yield {"role": "user", "content": parts}


def _image_url(block: dict[str, Any]) -> str:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        return f"data:{source.get('media_type')};base64,{source.get('data')}"
    if source.get("type") == "url" and isinstance(source.get("url"), str):
        return str(source["url"])
    raise _bad("messages: an image needs a base64 or url source")


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(tool.get("name"), str):
        raise _bad("tools: each tool needs a name")
    function: dict[str, Any] = {"name": tool["name"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    function["parameters"] = tool.get("input_schema") or {"type": "object", "properties": {}}
    return {"type": "function", "function": function}


def _tool_choice(choice: dict[str, Any] | None) -> str | dict[str, Any] | None:
    if choice is None:
        return None
    kind = choice.get("type")
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name")}}
    mapped = {"auto": "auto", "any": "required", "none": "none"}.get(str(kind))
    if mapped is None:
        raise _bad(f"tool_choice: unknown type {kind!r}")
    return mapped


# --- results ----------------------------------------------------------------------


def _usage(usage: Usage | None) -> dict[str, int]:
    if usage is None:
        return {"input_tokens": 0, "output_tokens": 0}
    details = usage.prompt_tokens_details or {}
    read = int(details.get("cached_tokens") or 0)
    created = int(details.get("cache_creation_tokens") or 0)
    out = {"input_tokens": max(0, usage.prompt_tokens - read - created)}
    if read or created:
        out["cache_read_input_tokens"] = read
        out["cache_creation_input_tokens"] = created
    out["output_tokens"] = usage.completion_tokens
    return out


def _stop_reason(finish: str | None, provider: str | None) -> str | None:
    if provider in ("stop_sequence", "pause_turn", "end_turn", "max_tokens", "tool_use"):
        return provider
    return None if finish is None else _STOP_REASONS.get(finish, finish)


def message_json(completion: ChatCompletion, model: str) -> bytes:
    """A completion as an Anthropic ``message``."""
    choice = completion.choices[0] if completion.choices else None
    content: list[dict[str, Any]] = []
    if choice is not None:
        message = choice.message
        if message.content:
            content.append({"type": "text", "text": message.content})
        for call in message.tool_calls or ():
            arguments = call.function.arguments or "{}"
            try:
                value = msgspec.json.decode(arguments)
            except msgspec.DecodeError:
                value = {"_raw": arguments}
            content.append(
                {"type": "tool_use", "id": call.id, "name": call.function.name, "input": value}
            )
    finish = choice.finish_reason if choice else None
    provider = choice.provider_finish_reason if choice else None
    return _encode(
        {
            "id": _message_id(completion.id),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": _stop_reason(finish, provider),
            "stop_sequence": None,
            "usage": _usage(completion.usage),
        }
    )


def _message_id(upstream: str) -> str:
    return upstream if upstream.startswith("msg_") else f"msg_{upstream or 'gateway'}"


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + _encode(payload) + b"\n\n"


class StreamTranslator:
    """Turns llmfast's chunks (choice 0) into Anthropic's stream events, block by block."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._block: tuple[str, int] | None = None  # ("text", 0) / ("tool", tool index)
        self._index = -1
        self._started = False
        self._finish: str | None = None
        self._provider_finish: str | None = None
        self.usage: Usage | None = None
        self._text_head = b""  # a text delta's event up to its text, for this block

    def batch(self, chunks: list[ChatCompletionChunk]) -> bytes:
        """The events for ``chunks``, joined (possibly none). A chunk that only adds
        text to the open text block is the block's byte template with the text spliced
        in (the same bytes ``feed`` would give)."""
        out: list[bytes] = []
        append = out.append
        for chunk in chunks:
            choices = chunk.choices
            if len(choices) == 1 and chunk.usage is None and self._block == ("text", 0):
                choice = choices[0]
                delta = choice.delta
                text = delta.content
                if (
                    text
                    and choice.index == 0
                    and choice.finish_reason is None
                    and delta.tool_calls is None
                ):
                    append(self._text_head + _encode(text) + b"}}\n\n")
                    continue
            append(self.feed(chunk))
        return b"".join(out)

    def feed(self, chunk: ChatCompletionChunk) -> bytes:
        """The events for one chunk (possibly none)."""
        out: list[bytes] = []
        if not self._started:
            self._started = True
            message: dict[str, Any] = {
                "id": _message_id(chunk.id),
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }
            out.append(_event("message_start", {"type": "message_start", "message": message}))
        if chunk.usage is not None:
            self.usage = chunk.usage
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            delta = choice.delta
            if delta.content:
                out.extend(self._open(("text", 0), {"type": "text", "text": ""}))
                payload = {"type": "text_delta", "text": delta.content}
                out.append(self._delta(payload))
            for call in delta.tool_calls or ():
                block: dict[str, Any] = {
                    "type": "tool_use",
                    "id": call.id or "",
                    "input": {},
                    "name": call.function.name if call.function else "",
                }
                out.extend(self._open(("tool", call.index), block))
                if call.function is not None and call.function.arguments:
                    payload = {"type": "input_json_delta", "partial_json": call.function.arguments}
                    out.append(self._delta(payload))
            if choice.finish_reason is not None:
                self._finish = choice.finish_reason
                self._provider_finish = choice.provider_finish_reason
        return b"".join(out)

    def finish_after(self, chunks: list[ChatCompletionChunk]) -> bytes:
        """``batch(chunks) + finish()``."""
        return self.batch(chunks) + self.finish()

    def finish(self) -> bytes:
        """The closing events, once the upstream stream has ended."""
        out = [self._close()] if self._block is not None else []
        usage = _usage(self.usage)
        delta = {
            "stop_reason": _stop_reason(self._finish, self._provider_finish),
            "stop_sequence": None,
        }
        out.append(
            _event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
        )
        out.append(_event("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    def _open(self, block: tuple[str, int], start: dict[str, Any]) -> list[bytes]:
        if self._block == block:
            return []
        out = [self._close()] if self._block is not None else []
        self._block = block
        self._index += 1
        self._text_head = (
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
            + str(self._index).encode()
            + b',"delta":{"type":"text_delta","text":'
        )
        out.append(
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": self._index, "content_block": start},
            )
        )
        return out

    def _close(self) -> bytes:
        return _event("content_block_stop", {"type": "content_block_stop", "index": self._index})

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return _event(
            "content_block_delta",
            {"type": "content_block_delta", "index": self._index, "delta": delta},
        )


def anthropic_error(failure: Failure) -> bytes:
    """``failure`` as an Anthropic error body (also the data of an ``error`` event)."""
    kind = _ERROR_TYPES.get(failure.status, "api_error")
    return _encode({"type": "error", "error": {"type": kind, "message": failure.message}})
