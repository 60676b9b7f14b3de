"""Scripted replies for the LangChain suites: tool calls with the arguments a standard
test checks for, JSON for ``json_mode``, and usage with cache or reasoning details."""

from __future__ import annotations

from typing import Any

from llmfast.testing import Reply

__all__ = ["JOKE", "call", "usage_reply"]

JOKE = Reply.text(
    '{"setup": "Why did the cat sit on the laptop?", "punchline": "To keep an eye on the mouse."}'
)


def call(name: str, arguments: dict[str, Any]) -> Reply:
    """A reply asking for one tool call."""
    return Reply.tool_calls([{"name": name, "arguments": arguments}])


def usage_reply(detail: str) -> Reply:
    """A reply whose usage reports ``detail`` (``cache_read``, ``cache_creation`` or
    ``reasoning`` tokens) in each format's own way (``llmfast.testing`` renders it):
    the prompt must have at least two words."""
    if detail == "reasoning":
        return Reply.text("Hello there.", reasoning="thinking it over")
    if detail == "cache_read":
        return Reply.text("Hello there.").with_cache(read=1)
    return Reply.text("Hello there.").with_cache(write=1)
