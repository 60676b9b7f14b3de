"""Anthropic's prompt cache, as [MockServer][llmfast.testing.MockServer] plays it: a
request with ``cache_control`` breakpoints reports ``cache_creation_input_tokens`` the
first time a prefix is seen and ``cache_read_input_tokens`` when it is seen again.

The prompt is read in Anthropic's order (tools, ``system``, then each message's
blocks); the prefix up to each breakpoint is remembered per model (by a hash) for its
lifetime (``ttl`` ``"1h"``, else five minutes, refreshed on each read). A hit is the
longest remembered prefix found at a breakpoint or at up to 20 block boundaries
before it; what lies between the hit and the last breakpoint is written. A
breakpoint whose prefix is shorter than the model's minimum (1024 tokens unless
the model is listed in ``llmfast.backends._prompt_cache``) is not cached. Tokens are
the server's usual word counts (tools and non-text blocks count none), so the three
figures add up to the prompt tokens the server reports without caching.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmfast.backends._prompt_cache import min_cacheable_tokens

from . import _payloads as p
from .formats import ChatCall

__all__ = ["PromptCacheEcho", "PromptCacheUsage", "with_prompt_cache"]

_LOOKBACK = 20
_TTLS = {"1h": 3600.0, "5m": 300.0}
_MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class PromptCacheUsage:
    """The cache figures of one request (tokens)."""

    read: int = 0
    written: int = 0
    written_1h: int = 0


def with_prompt_cache(usage: dict[str, Any], cache: PromptCacheUsage | None) -> dict[str, Any]:
    """An Anthropic ``usage`` object with the request's cache figures folded in (a
    reply's own scripted ``cached_tokens``/``cache_write_tokens`` win)."""
    if (
        cache is None
        or usage.get("cache_read_input_tokens")
        or usage.get("cache_creation_input_tokens")
    ):
        return usage
    prompt = usage.get("input_tokens", 0)
    usage["input_tokens"] = max(prompt - cache.read - cache.written, 0)
    usage["cache_read_input_tokens"] = cache.read
    usage["cache_creation_input_tokens"] = cache.written
    usage["cache_creation"] = {
        "ephemeral_5m_input_tokens": cache.written - cache.written_1h,
        "ephemeral_1h_input_tokens": cache.written_1h,
    }
    return usage


class PromptCacheEcho:
    """The remembered prefixes of one server."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._expiry: dict[bytes, float] = {}

    def clear(self) -> None:
        """Forget every remembered prefix."""
        self._expiry.clear()

    def account(self, call: ChatCall) -> ChatCall:
        """``call`` with its cache figures (``call.prompt_cache``) when it has breakpoints."""
        blocks = _blocks(call.body)
        marks = [i for i, (_, _, mark) in enumerate(blocks) if mark is not None]
        if not marks:
            return call
        digest = hashlib.sha256(call.model.encode())
        boundaries: list[bytes] = []
        totals: list[int] = []
        total = 0
        for tokens, data, _ in blocks:
            digest.update(data)
            boundaries.append(digest.copy().digest())
            total += tokens
            totals.append(total)
        minimum = min_cacheable_tokens(call.model)
        marks = [i for i in marks if totals[i] >= minimum]
        if not marks:
            return dataclasses.replace(call, prompt_cache=PromptCacheUsage())
        now = self._clock()
        expiry = self._expiry
        hit = -1
        for mark in marks:
            for boundary in range(mark, max(mark - _LOOKBACK, -1), -1):
                if boundary > hit and expiry.get(boundaries[boundary], 0.0) > now:
                    hit = boundary
                    break
        read = totals[hit] if hit >= 0 else 0
        written = written_1h = 0
        start = read
        for mark in marks:
            ttl = _ttl(blocks[mark][2])
            if mark > hit:
                segment = totals[mark] - start
                written += segment
                if ttl == _TTLS["1h"]:
                    written_1h += segment
                start = totals[mark]
            expiry[boundaries[mark]] = now + ttl
        if hit >= 0:
            expiry[boundaries[hit]] = max(expiry[boundaries[hit]], now + _TTLS["5m"])
        if len(expiry) > _MAX_ENTRIES:
            for key in [k for k, until in expiry.items() if until <= now] or list(expiry)[:1000]:
                expiry.pop(key, None)
        usage = PromptCacheUsage(read=read, written=written, written_1h=written_1h)
        return dataclasses.replace(call, prompt_cache=usage)


def _ttl(mark: Any) -> float:
    ttl = mark.get("ttl") if isinstance(mark, dict) else None
    return _TTLS.get(ttl, _TTLS["5m"]) if isinstance(ttl, str) else _TTLS["5m"]


def _blocks(body: dict[str, Any]) -> list[tuple[int, bytes, Any]]:
    """``(tokens, canonical bytes without the mark, mark)`` of each prompt block, in order."""
    tools = body.get("tools")
    out = [_block(tool, 0) for tool in (tools if isinstance(tools, list) else ())]
    system = body.get("system")
    if isinstance(system, str):
        out.append(_content_block({"type": "text", "text": system}))
    elif isinstance(system, list):
        out.extend(_content_block(block) for block in system)
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        content = message.get("content")
        if isinstance(content, str):  # the same as one text block
            out.append(_content_block({"type": "text", "text": content}, role))
        elif isinstance(content, list):
            out.extend(_content_block(block, role) for block in content)
    return out


def _content_block(block: Any, role: Any = None) -> tuple[int, bytes, Any]:
    text = block.get("text") if isinstance(block, dict) else None
    tokens = p.count_words(text) if isinstance(text, str) and block.get("type") == "text" else 0
    return _block(block, tokens, role)


def _block(block: Any, tokens: int, role: Any = None) -> tuple[int, bytes, Any]:
    if not isinstance(block, dict):
        return tokens, p.ENCODER.encode([role, block]), None
    mark = block.get("cache_control")
    bare = {k: v for k, v in block.items() if k != "cache_control"}
    return tokens, p.ENCODER.encode([role, bare]), mark
