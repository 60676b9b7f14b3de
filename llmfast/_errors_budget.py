"""The budget error, re-exported by ``llmfast.errors`` (import it from there)."""

from __future__ import annotations

from llmfast.errors import LLMFastError

__all__ = ["BudgetExceededError"]


class BudgetExceededError(LLMFastError):
    """A ``Budget`` would be overspent by the next attempt, which was therefore not sent.

    Attributes:
        budget: the budget's name (with the tenant, for a per-tenant budget).
        unit: ``"usd"`` or ``"tokens"``.
        limit: the budget's limit, in ``unit``.
        spent: what was spent (and reserved by attempts in flight) when it was checked.
        needed: what this attempt was estimated to cost.
        resets_in: seconds until the budget's period starts afresh (``None``: a budget
            in total, which never resets).
    """

    def __init__(
        self,
        budget: str,
        *,
        unit: str,
        limit: float,
        spent: float,
        needed: float,
        resets_in: float | None,
    ) -> None:
        self.budget = budget
        self.unit = unit
        self.limit = limit
        self.spent = spent
        self.needed = needed
        self.resets_in = resets_in
        when = "" if resets_in is None else f"; it resets in {resets_in:.0f} s"
        super().__init__(
            f"budget {budget!r} would be overspent: {spent:g} of {limit:g} {unit} spent,"
            f" this attempt needs about {needed:g}{when}"
        )


BudgetExceededError.__module__ = "llmfast.errors"
