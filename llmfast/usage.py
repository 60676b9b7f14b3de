"""One usage shape for every provider, and usage summed over a call's attempts.

[`Usage`][llmfast.usage.Usage] has one meaning whatever the backend (the table per
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

from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

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


class Usage(msgspec.Struct, omit_defaults=True):
    """Token counts, with one meaning for every provider (see ``docs/cost.md``).

    ``prompt_tokens`` is every input token, cached ones included (cache reads and
    writes are *parts* of it, as in OpenAI's usage; Anthropic's, reported beside its
    ``input_tokens``, are added in). ``completion_tokens`` is every output token,
    reasoning included. The ``*_details`` dicts are the provider's breakdown in
    OpenAI's key names (``cached_tokens``, ``cache_creation_tokens``,
    ``reasoning_tokens``, ``audio_tokens``...) plus what only that provider reports;
    the properties below read them. ``batch`` marks usage billed at a provider's batch
    rate (set on provider-batch results).
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: dict[str, Any] | None = None
    completion_tokens_details: dict[str, Any] | None = None
    batch: bool = False

    @property
    def input_tokens(self) -> int:
        """Every input token (cache reads and writes included); ``prompt_tokens``."""
        return self.prompt_tokens

    @property
    def output_tokens(self) -> int:
        """Every output token (reasoning included); ``completion_tokens``."""
        return self.completion_tokens

    @property
    def cache_read_tokens(self) -> int:
        """Input tokens read from the provider's prompt cache (part of ``input_tokens``)."""
        return _detail(self.prompt_tokens_details, "cached_tokens")

    @property
    def cache_write_tokens(self) -> int:
        """Input tokens written to the prompt cache (Anthropic; part of ``input_tokens``)."""
        return _detail(self.prompt_tokens_details, "cache_creation_tokens")

    @property
    def uncached_input_tokens(self) -> int:
        """Input tokens neither read from nor written to a cache (Anthropic's
        ``input_tokens``)."""
        return self.prompt_tokens - self.cache_read_tokens - self.cache_write_tokens

    @property
    def reasoning_tokens(self) -> int:
        """Output tokens spent on reasoning / thinking (part of ``output_tokens``)."""
        return _detail(self.completion_tokens_details, "reasoning_tokens")

    @property
    def input_audio_tokens(self) -> int:
        """Audio input tokens, where reported (part of ``input_tokens``)."""
        return _detail(self.prompt_tokens_details, "audio_tokens")

    @property
    def output_audio_tokens(self) -> int:
        """Audio output tokens, where reported (part of ``output_tokens``)."""
        return _detail(self.completion_tokens_details, "audio_tokens")

    @property
    def input_image_tokens(self) -> int:
        """Image input tokens, where reported (Gemini; part of ``input_tokens``)."""
        return _detail(self.prompt_tokens_details, "image_tokens")

    def __add__(self, other: Usage) -> Usage:
        """The two summed, the per-kind ``*_details`` counts too (e.g. two attempts)."""
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
            _add_details(self.prompt_tokens_details, other.prompt_tokens_details),
            _add_details(self.completion_tokens_details, other.completion_tokens_details),
            self.batch and other.batch,
        )


def _detail(details: dict[str, Any] | None, key: str) -> int:
    if not details:
        return 0
    value = details.get(key)
    return value if type(value) is int else 0


def _add_details(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any] | None:
    if not a or not b:
        return a or b
    out = dict(a)
    for key, value in b.items():
        old = out.get(key)
        if type(value) is int and type(old) is int:
            out[key] = old + value
        elif old is None:
            out[key] = value
    return out


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
