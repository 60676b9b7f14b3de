"""Provider-batch items reported as calls: one ``done`` event per item to the client's
event hook (``Client(on_event=..., stats=...)``), as the online path reports each
call, so [`Stats`][llmfast.stats.Stats], OpenTelemetry and your own hooks see the
job's usage, its cost at the batch price and what that saved (``batch_saved``).

The event's ``data`` is the online path's (``llmfast.events.call_summary``) plus
``batch=True``; ``usage.batch`` is set, so prices apply the batch rate. It has no
``elapsed``: a batch item has no latency of its own (the batch took hours), so it
leaves the latency figures alone.
"""

from __future__ import annotations

from typing import Any

from llmfast.events import Event, EventHook, call_summary
from llmfast.transport import Request
from llmfast.types import ChatCompletion, EmbeddingResponse, Usage

__all__ = ["report"]


def report(
    hook: EventHook,
    request: Request,
    value: Any,
    error: Exception | None,
    batch: bool = True,
    elapsed: float | None = None,
) -> None:
    """Tell ``hook`` that ``request`` ended with ``value`` (a completion or embeddings)
    or ``error``; ``batch``: it ran in a provider batch (else online, by the fallback,
    which took ``elapsed`` seconds)."""
    usage: Usage | None = None
    reasons: tuple[str, ...] = ()
    if type(value) is ChatCompletion:
        usage = value.usage
        reasons = tuple(c.finish_reason for c in value.choices if c.finish_reason)
    elif type(value) is EmbeddingResponse and value.usage is not None:
        embedded = value.usage
        usage = Usage(embedded.prompt_tokens, 0, embedded.total_tokens, batch=embedded.batch)
    data = call_summary(request, error, usage, None, reasons)
    if batch:
        data["batch"] = True
    hook(Event("done", request, elapsed, data))
