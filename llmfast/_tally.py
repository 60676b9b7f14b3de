"""One model's running figures inside [`Stats`][llmfast.stats.Stats]."""

from __future__ import annotations

from collections.abc import Iterable

from llmfast.types import Usage

__all__ = ["Tally", "plus", "total"]


class Tally:
    """One model's figures: calls, tokens by kind, the cost of every priced attempt
    (``None`` once one could not be priced), and of its provider-batch usage the cost
    and what it saved against the online price."""

    __slots__ = (
        "batch_calls",
        "batch_cost",
        "cache_read",
        "cache_write",
        "calls",
        "cost",
        "input",
        "output",
        "reasoning",
        "saved",
    )

    def __init__(self) -> None:
        self.calls = self.input = self.output = self.batch_calls = 0
        self.cache_read = self.cache_write = self.reasoning = 0
        self.cost: float | None = 0.0
        self.batch_cost: float | None = 0.0
        self.saved: float | None = 0.0

    def add(self, usage: Usage, cost: float | None, saved: float | None) -> None:
        self.input += usage.prompt_tokens
        self.output += usage.completion_tokens
        self.cache_read += usage.cache_read_tokens
        self.cache_write += usage.cache_write_tokens
        self.reasoning += usage.reasoning_tokens
        self.charge(cost, saved, usage.batch)

    def charge(self, cost: float | None, saved: float | None, batch: bool) -> None:
        self.cost = plus(self.cost, cost)
        if batch:
            self.batch_cost = plus(self.batch_cost, cost)
            self.saved = plus(self.saved, saved)


def plus(total: float | None, more: float | None) -> float | None:
    """``total + more``; ``None`` (unknown) when either is."""
    return None if total is None or more is None else total + more


def total(values: Iterable[float | None]) -> float | None:
    """The sum of ``values``; ``None`` (unknown) when any is."""
    out: float | None = 0.0
    for value in values:
        out = plus(out, value)
    return out
