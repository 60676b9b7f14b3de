"""What a batch job cost, for the terminal: the line ``llmfast batch`` prints at the end
of a provider-batch run and under ``--status``, from [`Stats`][llmfast.stats.Stats]
(the run's calls, or every result a checkpoint holds)."""

from __future__ import annotations

import os
from typing import Any

import msgspec

from llmfast.events import Event
from llmfast.stats import Stats, StatsSnapshot
from llmfast.transport import Request
from llmfast.types import ChatRequest, EmbeddingRequest, EmbeddingUsage, Usage

__all__ = ["checkpoint_stats", "cost_line"]


class _Billed(msgspec.Struct):
    model: str = ""
    usage: Usage | None = None


class _Embedded(msgspec.Struct):
    model: str = ""
    usage: EmbeddingUsage | None = None


class _Line(msgspec.Struct):
    """What pricing needs from a checkpoint record (the rest is skipped)."""

    completion: _Billed | None = None
    embeddings: _Embedded | None = None


_DECODE = msgspec.json.Decoder(_Line).decode


def _dollars(value: float | None) -> str:
    return "unknown" if value is None else f"${value:.6g}"


def cost_line(snapshot: StatsSnapshot) -> str:
    """``cost $0.42 at the batch price, saved $0.42 against the online price`` (or
    ``cost unknown (no price for m)``: an unknown price is never shown as 0)."""
    s = snapshot
    if s.batch_calls:
        line = (
            f"cost {_dollars(s.batch_cost)} at the batch price, saved "
            f"{_dollars(s.batch_saved)} against the online price"
        )
        if s.calls > s.batch_calls:
            line += f"; {_dollars(s.cost)} in all with {s.calls - s.batch_calls} online"
    else:
        line = f"cost {_dollars(s.cost)}"
    if s.unpriced_models:
        line += f" (no price for {', '.join(s.unpriced_models)}"
        line += (
            "; pip install 'llmfast[prices]' for the built-in table)" if not s.price_data else ")"
        )
    return line


def checkpoint_stats(
    checkpoint: str | os.PathLike[str], stats: Stats | None = None
) -> StatsSnapshot:
    """Every result recorded in ``checkpoint`` (this run's and earlier runs'), reported
    to ``stats`` (default: a new ``Stats``) as the calls that made them, and its
    snapshot: tokens, cost at the price each was billed at, ``batch_saved``. Priced by
    the model each completion names; read line by line."""
    stats = stats or Stats()
    with open(checkpoint, "rb") as file:
        for raw in file:
            try:
                line = _DECODE(raw)
            except msgspec.DecodeError:
                continue  # a torn last line (see llmfast.checkpoint)
            if line.completion is not None:
                _done(
                    stats,
                    ChatRequest(model=line.completion.model, messages=[]),
                    line.completion.usage,
                )
            elif line.embeddings is not None:
                used = line.embeddings.usage
                usage = None
                if used is not None:
                    usage = Usage(used.prompt_tokens, 0, used.total_tokens, batch=used.batch)
                _done(stats, EmbeddingRequest(model=line.embeddings.model, input=""), usage)
    return stats.snapshot()


def _done(stats: Stats, body: ChatRequest | EmbeddingRequest, usage: Usage | None) -> None:
    request = Request(body)
    batch = usage is not None and usage.batch
    data: dict[str, Any] = {"kind": request.kind, "model": body.model, "outcome": "ok"}
    data.update(usage=usage, batch=batch)
    stats(Event("done", request, None, data))
