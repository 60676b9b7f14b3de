"""Usage summed over the attempts of one call (re-asks, tool-loop steps)."""

from __future__ import annotations

from typing import Any

from llmfast.types import Usage

__all__ = ["add_usage"]


def add_usage(total: Usage | None, more: Usage | None) -> Usage | None:
    """``total`` plus ``more`` (the per-kind ``*_details`` counts added too)."""
    if more is None:
        return total
    if total is None:
        return more
    return Usage(
        prompt_tokens=total.prompt_tokens + more.prompt_tokens,
        completion_tokens=total.completion_tokens + more.completion_tokens,
        total_tokens=total.total_tokens + more.total_tokens,
        prompt_tokens_details=_add_details(total.prompt_tokens_details, more.prompt_tokens_details),
        completion_tokens_details=_add_details(
            total.completion_tokens_details, more.completion_tokens_details
        ),
    )


def _add_details(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any] | None:
    if not a or not b:
        return a or b
    out = dict(a)
    for key, value in b.items():
        old = out.get(key)
        if isinstance(value, int) and isinstance(old, int):
            out[key] = old + value
        elif old is None:
            out[key] = value
    return out
