"""One usage shape for every provider, and usage summed over a call's attempts.

[`Usage`][llmfast.types.Usage] has one meaning whatever the backend (the table per
provider is in ``docs/cost.md``): ``input_tokens`` (= ``prompt_tokens``) counts every
input token, and ``cache_read_tokens`` / ``cache_write_tokens`` are *parts* of it;
``output_tokens`` (= ``completion_tokens``) counts every output token, and
``reasoning_tokens`` is part of it. The provider's own figures stay reachable: the
``*_details`` dicts keep its breakdown, and e.g. Anthropic's ``input_tokens`` is
``uncached_input_tokens``.

A call's attempts each count: ``ChatCompletion.usage`` is the final attempt's,
``ChatCompletion.total_usage`` the whole call's (see
[`total_usage`][llmfast.types.ChatCompletion.total_usage]).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import msgspec

from llmfast.types import Usage

if TYPE_CHECKING:
    from llmfast.transport import Request

__all__ = [
    "Usage",
    "add_usage",
    "error_usage",
    "record_earlier",
    "sum_usage",
    "with_earlier_usage",
]

_R = TypeVar("_R")


def add_usage(total: Usage | None, more: Usage | None) -> Usage | None:
    """``total`` plus ``more`` (``None`` counts as nothing; the details are summed)."""
    if more is None:
        return total
    if total is None:
        return more
    return total + more


def sum_usage(*usages: Usage | None) -> Usage | None:
    """Every usage given, summed; ``None`` when none was reported."""
    total: Usage | None = None
    for usage in usages:
        total = add_usage(total, usage)
    return total


def error_usage(error: BaseException) -> Usage | None:
    """The usage a failed attempt's server reported before it failed, if any.

    An Anthropic stream reports its input tokens in ``message_start``, before an
    ``overloaded_error`` event; a stream interrupted after chunks keeps the usage of
    its ``partial`` completion. A plain HTTP 500 reports none.
    """
    usage = getattr(error, "usage", None)
    if isinstance(usage, Usage):
        return usage
    partial = getattr(error, "partial", None)
    usage = getattr(partial, "usage", None)
    return usage if isinstance(usage, Usage) else None


def record_earlier(request: Request, error: BaseException) -> Usage | None:
    """Add a discarded attempt's usage (from ``error``) to ``request.earlier_usage``,
    for a layer that retries or falls over; returns that usage."""
    usage = error_usage(error)
    if usage is not None:
        request.earlier_usage = add_usage(request.earlier_usage, usage)
    return usage


def with_earlier_usage(result: _R, request: Request) -> _R:
    """``result`` (a completion) carrying ``request.earlier_usage`` -- a copy, since a
    cached or shared result must not change under its other readers."""
    earlier = request.earlier_usage
    if earlier is None or not hasattr(result, "earlier_usage"):
        return result
    own = getattr(result, "earlier_usage", None)
    copied: _R = msgspec.structs.replace(result, earlier_usage=add_usage(own, earlier))  # type: ignore[type-var]
    return copied
