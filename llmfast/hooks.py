"""Combine event hooks: ``fan_out(stats, otel, my_hook)`` calls each in turn.

Built once (at client construction), so a call pays nothing for it: with no hook it
returns ``None`` (layers skip reporting), with one it returns that hook itself.
"""

from __future__ import annotations

from llmfast.events import Event, EventHook

__all__ = ["fan_out"]


def fan_out(*hooks: EventHook | None) -> EventHook | None:
    """One hook that calls every given hook, in order; ``None`` entries are skipped.

    Returns ``None`` when there is none and the hook itself when there is one. A hook
    that raises stops the ones after it, as it would stop the layer reporting.
    """
    present = tuple(hook for hook in hooks if hook is not None)
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    if len(present) == 2:
        first, second = present

        def both(event: Event) -> None:
            first(event)
            second(event)

        return both

    def every(event: Event) -> None:
        for hook in present:
            hook(event)

    return every
