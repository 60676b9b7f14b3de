"""The crash points of a provider-batch run, for the tests that SIGKILL one and resume
it: ``$LLMFAST_BATCH_CRASH=point:n`` (or [`arm`][llmfast.batch.provider.crash.arm]) kills
the process the ``n``-th time it reaches ``point``: ``upload`` (after the intent, before
uploading), ``create`` (after the create call answered, before its id is recorded),
``poll``, ``download`` (after a result is recorded). Unarmed, a point costs one test."""

from __future__ import annotations

import os
import signal

__all__ = ["CRASH_ENV", "arm", "crash_point"]

CRASH_ENV = "LLMFAST_BATCH_CRASH"
"""The environment variable read at import: ``point:n``."""
_armed = [os.environ.get(CRASH_ENV, "")]
_counts: dict[str, int] = {}


def arm(spec: str) -> None:
    """Kill this process at ``spec`` (``point:n``; ``""`` disarms), as the variable does."""
    _armed[0] = spec
    _counts.clear()


def crash_point(point: str) -> None:
    """Kill this process (SIGKILL) here when armed for this point and count."""
    spec = _armed[0]
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name == point:
        _counts[point] = _counts.get(point, 0) + 1
        if _counts[point] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
