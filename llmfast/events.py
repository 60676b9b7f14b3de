"""One event hook for every layer: what happened to a call, and how long it took.

Pass ``Client(on_event=hook)``; every layer reports to it through the request it is
handling. A hook is a plain function called synchronously on the event loop, so it
must be quick and must not block; with no hook set, reporting costs one ``None`` check.

Event names used by llmfast's layers (``data`` keys in brackets):

=====================  =====================================================
``attempt``            an attempt is about to be sent [attempt]
``attempt.failed``     an attempt failed (elapsed: its duration) [attempt, error, retryable]
``attempt.ok``         an attempt succeeded (elapsed: its duration up to its first chunk,
                       or its whole duration when not streaming) [attempt]
``retry``              sleeping before the next attempt (elapsed: the delay) [attempt,
                       delay, reason]
``ratelimit.wait``     admitted by a limiter (elapsed: the wait, 0 if none) [queue_length]
``cache.hit``          served from the cache (elapsed: the lookup) [key]
``cache.miss``         not in the cache (elapsed: the lookup) [key]
``cache.store``        stored in the cache (elapsed: the write) [key]
``cache.error``        a cache entry could not be read or written [key, error]
``coalesce.join``      joined an identical call already in flight [key; remote: in
                       another process, through Redis]
``coalesce.keep``      a leader's callers all left; its call goes on for the processes
                       following it [key]
``coalesce.error``     shared coalescing's Redis store failed [key, error]
``breaker.state``      a circuit breaker changed state [backend, state]
``budget.exceeded``    a Budget refused an attempt before it was sent [budget, spent]
``fallback``           moving on to another backend [backend, error]
``resume``             a dropped stream re-attaches to its response (Responses API)
                       [resume (1 for the first), response_id, sequence_number (the
                       last one seen), reason (the drop's class)]
``first_chunk``        the first chunk reached the caller (elapsed: since the call began)
``done``               the call ended (elapsed: its wall time) [kind, model, stream,
                       outcome ("ok", "closed" or the error's class), prompt_tokens,
                       completion_tokens, cache_read_tokens, cache_write_tokens,
                       reasoning_tokens (all attempts' totals), usage (the final
                       attempt's ``Usage``), earlier_usage (earlier attempts'),
                       finish_reasons; streams also chunks, max_gap; a provider
                       batch's items also batch=True, and no elapsed]
=====================  =====================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from llmfast.types import Usage
from llmfast.usage import add_usage, error_usage

if TYPE_CHECKING:
    from llmfast.transport import Request

__all__ = ["Event", "EventHook", "call_summary", "emit", "only_events"]


class Event(msgspec.Struct, frozen=True):
    """Something that happened to one call (immutable; made for every event a hook
    takes, so it is a C struct: a fifth of what a frozen dataclass costs to make).

    Attributes:
        name: what happened (see the module docstring for the names in use).
        request: the call it happened to.
        elapsed: seconds the step took (a wait, an attempt), when it has a duration.
        data: details, by name; never contains secrets.
    """

    name: str
    request: Request
    elapsed: float | None = None
    data: Mapping[str, Any] = msgspec.field(default_factory=dict)


EventHook = Callable[[Event], None]
"""Receives every event; called synchronously, so it must not block. A hook made with
[`only_events`][llmfast.events.only_events] receives only the events it names: the
others are not even made."""


class _OnlyEvents:
    """An event hook that takes the events named ``event_names`` only."""

    __slots__ = ("event_names", "hook")

    def __init__(self, hook: EventHook, names: frozenset[str]) -> None:
        self.hook = hook
        self.event_names = names

    def __call__(self, event: Event) -> None:
        if event.name in self.event_names:
            self.hook(event)

    def __repr__(self) -> str:
        return f"only_events({sorted(self.event_names)!r}, {self.hook!r})"


def only_events(names: Iterable[str], hook: EventHook) -> EventHook:
    """``hook``, called for the events named ``names`` only: a layer reporting any
    other event to it does not make the [`Event`][llmfast.events.Event] (for a hook
    on every call of a busy process that counts a few rare events, such as retries
    and cache hits, but not each call's ``attempt`` and ``attempt.ok``)."""
    return _OnlyEvents(hook, frozenset(names))


def emit(request: Request, name: str, elapsed: float | None = None, **data: Any) -> None:
    """Report an event to the request's hook, if it has one (and it takes ``name``:
    see [`only_events`][llmfast.events.only_events]).

    Layers on a hot path should test ``request.on_event is not None`` themselves
    before building costly ``data``.
    """
    hook = request.on_event
    if hook is not None:
        if type(hook) is _OnlyEvents and name not in hook.event_names:
            return
        hook(Event(name, request, elapsed, data))


def call_summary(
    request: Request,
    error: BaseException | None,
    usage: Any = None,
    outcome: str | None = None,
    finish_reasons: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The ``data`` of a ``done`` event: what was called and how it ended."""
    if outcome is None:
        outcome = "ok" if error is None else type(error).__name__
    if usage is None and error is not None:
        usage = error_usage(error)
    earlier = request.earlier_usage
    total = add_usage(usage, earlier) if isinstance(usage, Usage) or usage is None else usage
    return {
        "kind": request.kind,
        "model": request.body.model,
        "stream": request.stream,
        "outcome": outcome,
        "prompt_tokens": getattr(total, "prompt_tokens", None),
        "completion_tokens": getattr(total, "completion_tokens", None),
        "cache_read_tokens": getattr(total, "cache_read_tokens", None),
        "cache_write_tokens": getattr(total, "cache_write_tokens", None),
        "reasoning_tokens": getattr(total, "reasoning_tokens", None),
        "usage": usage,
        "earlier_usage": earlier,
        "finish_reasons": finish_reasons,
    }
