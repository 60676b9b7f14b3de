"""Scripted replies for the LangChain suites: tool calls with the arguments a standard
test checks for, JSON for ``json_mode``, and recorded-shape bodies whose usage carries
the token details (cache reads and writes, reasoning) that ``llmfast.testing``'s own
replies leave out, in the OpenAI and Anthropic wire formats, whole and streamed."""

from __future__ import annotations

import json
from typing import Any

from llmfast.testing import Reply

__all__ = ["JOKE", "call", "usage_reply"]

JOKE = Reply.text(
    '{"setup": "Why did the cat sit on the laptop?", "punchline": "To keep an eye on the mouse."}'
)


def call(name: str, arguments: dict[str, Any]) -> Reply:
    """A reply asking for one tool call."""
    return Reply.tool_calls([{"name": name, "arguments": arguments}])


def _sse(events: list[tuple[str | None, dict[str, Any]]], done: bool) -> bytes:
    out = []
    for event, data in events:
        head = f"event: {event}\n" if event else ""
        out.append(f"{head}data: {json.dumps(data)}\n\n")
    if done:
        out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def _openai(model: str, stream: bool, usage: dict[str, Any]) -> Reply:
    base = {"id": "chatcmpl-usage", "created": 1, "model": model, "system_fingerprint": "fp_u"}
    if not stream:
        body = {
            **base,
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello there."},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }
        return Reply.raw(json.dumps(body).encode(), content_type="application/json")
    chunk = {**base, "object": "chat.completion.chunk"}
    events: list[tuple[str | None, dict[str, Any]]] = [
        (
            None,
            {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}}]},
        ),
        (None, {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        (None, {**chunk, "choices": [], "usage": usage}),
    ]
    return Reply.raw(_sse(events, done=True))


def _anthropic(model: str, stream: bool, usage: dict[str, Any]) -> Reply:
    message = {"id": "msg_usage", "type": "message", "role": "assistant", "model": model}
    if not stream:
        body = {
            **message,
            "content": [{"type": "text", "text": "Hello there."}],
            "stop_reason": "end_turn",
            "usage": usage,
        }
        return Reply.raw(json.dumps(body).encode(), content_type="application/json")
    start_usage = {**usage, "output_tokens": 1}
    events: list[tuple[str | None, dict[str, Any]]] = [
        (
            "message_start",
            {"type": "message_start", "message": {**message, "content": [], "usage": start_usage}},
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Hi"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return Reply.raw(_sse(events, done=False))


def usage_reply(provider: str, model: str, *, stream: bool, detail: str) -> Reply:
    """A reply whose usage reports ``detail``: ``cache_read``, ``cache_creation`` or
    ``reasoning`` tokens, in ``provider``'s format."""
    if provider == "anthropic":
        usage = {"input_tokens": 6, "output_tokens": 5}
        if detail == "cache_read":
            usage["cache_read_input_tokens"] = 4
        elif detail == "cache_creation":
            usage["cache_creation_input_tokens"] = 3
        return _anthropic(model, stream, usage)
    openai_usage: dict[str, Any] = {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17}
    if detail == "cache_read":
        openai_usage["prompt_tokens_details"] = {"cached_tokens": 4}
    elif detail == "reasoning":
        openai_usage["completion_tokens_details"] = {"reasoning_tokens": 3}
    return _openai(model, stream, openai_usage)
