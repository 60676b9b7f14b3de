"""Standard ``logging`` for llmfast: the ``llmfast`` logger hierarchy and ``LoggingHook``.

llmfast never configures logging: its loggers have a ``NullHandler``, so nothing is
printed until the application configures ``logging``. Loggers, by area:

=======================  ==================================================
``llmfast.call``          every call's end (``done``) and first chunk
``llmfast.retry``         attempts, failures, retry waits
``llmfast.cache``         hits, misses, stores, store errors
``llmfast.ratelimit``     waits in a rate limiter's queue
``llmfast.coalesce``      calls joining an identical call in flight
``llmfast.breaker``       circuit-breaker state changes
``llmfast.router``        fallbacks to another backend
``llmfast.events``        any other event
=======================  ==================================================

``Client(on_event=LoggingHook())`` logs each call's end at INFO (WARNING when it
failed), retries and state changes at INFO or WARNING, and everything else at DEBUG.
Nothing logged holds an API key, a credential inside a URL or message contents.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from llmfast.events import Event
from llmfast.redact import redact_text

__all__ = ["LoggingHook", "describe", "logger"]

logger = _root = logging.getLogger("llmfast")
"""The root of llmfast's loggers."""
if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
    logger.addHandler(logging.NullHandler())

_AREAS = {
    "done": "call",
    "first_chunk": "call",
    "attempt": "retry",
    "attempt.failed": "retry",
    "attempt.ok": "retry",
    "retry": "retry",
    "ratelimit.wait": "ratelimit",
    "coalesce.join": "coalesce",
    "breaker.state": "breaker",
    "fallback": "router",
    "resume": "retry",
}
_OK = frozenset({"ok", "closed"})


def _seconds(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.3f} s"


def _level(event: Event) -> int:
    name = event.name
    if name == "done":
        return logging.INFO if event.data.get("outcome") in _OK else logging.WARNING
    if name == "breaker.state":
        return logging.WARNING if event.data.get("state") == "open" else logging.INFO
    return _LEVELS.get(name, logging.DEBUG)


_LEVELS = {
    "attempt.failed": logging.INFO,
    "retry": logging.INFO,
    "fallback": logging.WARNING,
    "cache.error": logging.WARNING,
}


def describe(event: Event) -> str:
    """One event in words (no API key, no message contents, no credentials in a URL)."""
    return redact_text(_words(event))


def _words(event: Event) -> str:
    data = event.data
    name = event.name
    took = _seconds(event.elapsed)
    if name == "done":
        request = event.request
        text = f"{request.kind} {request.body.model}{' stream' if request.stream else ''}"
        text += f" {data.get('outcome', '?')} in {took}"
        tokens = (data.get("prompt_tokens"), data.get("completion_tokens"))
        if tokens != (None, None):
            text += f", tokens {tokens[0] or 0} in / {tokens[1] or 0} out"
        if data.get("chunks"):
            text += f", {data['chunks']} chunks, max gap {_seconds(data.get('max_gap'))}"
        return text
    if name == "attempt.failed":
        retryable = "retryable" if data.get("retryable") else "not retryable"
        return (
            f"attempt {data.get('attempt')} failed after {took}: {data.get('error')} ({retryable})"
        )
    if name == "retry":
        return f"retrying in {took} ({data.get('reason')})"
    if name == "resume":
        return (
            f"resuming response {data.get('response_id')} after sequence number"
            f" {data.get('sequence_number')} (resume {data.get('resume')},"
            f" after {data.get('reason')})"
        )
    if name == "breaker.state":
        return f"circuit of {data.get('backend')} is now {data.get('state')}"
    if name == "fallback":
        return f"falling back after {data.get('error')}"
    if name == "cache.error":
        error = data.get("error")
        return f"cache entry unusable: {type(error).__name__}: {error}"
    if name == "ratelimit.wait":
        return f"waited {took} for the rate limit"
    if name in ("attempt", "attempt.ok"):
        done = f" succeeded in {took}" if name == "attempt.ok" else ""
        return f"attempt {data.get('attempt')}{done}"
    if name == "first_chunk":
        return f"first chunk after {took}"
    return f"{name} ({took})" if event.elapsed is not None else name


class LoggingHook:
    """An event hook that logs every event to the ``llmfast.*`` loggers (see above).

    Args:
        logger: the parent logger (default ``llmfast``); each area is a child of it.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        parent = logger if logger is not None else _root
        self._loggers: Mapping[str, logging.Logger] = {
            name: parent.getChild(area) for name, area in _AREAS.items()
        }
        self._cache = parent.getChild("cache")
        self._other = parent.getChild("events")

    def __call__(self, event: Event) -> None:
        name = event.name
        log = self._loggers.get(name)
        if log is None:
            log = self._cache if name.startswith("cache.") else self._other
        level = _level(event)
        if log.isEnabledFor(level):  # cheap: logging caches it
            extra = {"llmfast_event": name, "llmfast_elapsed": event.elapsed}
            log.log(level, "%s", describe(event), extra=extra)

    def __repr__(self) -> str:
        return "<LoggingHook>"
