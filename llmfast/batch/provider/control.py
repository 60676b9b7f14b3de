"""Looking at and cancelling the provider batches of a checkpoint (``llmfast batch
--status CHECKPOINT`` / ``--cancel CHECKPOINT``), from its batch journal."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from llmfast.batch.provider.api import BatchState
from llmfast.batch.provider.batch import journal_path, provider_api
from llmfast.batch.provider.journal import Entry, Journal
from llmfast.errors import ConfigurationError

if TYPE_CHECKING:
    from llmfast.client import Client

__all__ = ["cancel", "describe", "status"]


def _journal(checkpoint: str | os.PathLike[str]) -> Journal:
    path = journal_path(os.fspath(checkpoint))
    if not os.path.exists(path):
        raise ConfigurationError(f"{os.fspath(checkpoint)} has no provider batches ({path})")
    journal = Journal(path)
    journal.load()
    return journal


async def status(
    client: Client, checkpoint: str | os.PathLike[str]
) -> list[tuple[Entry, BatchState | None]]:
    """Every batch the checkpoint's runs created, with the provider's current word on
    those not ended yet (``None`` for a batch whose id a crash left unrecorded)."""
    api = provider_api(client.backend)
    out: list[tuple[Entry, BatchState | None]] = []
    for entry in _journal(checkpoint).entries.values():
        state = None
        if not entry.ended and entry.id is not None:
            state = await api.state(entry.id)
        out.append((entry, state))
    return out


async def cancel(client: Client, checkpoint: str | os.PathLike[str]) -> list[str]:
    """Cancel every batch of the checkpoint still running; returns their ids. Items
    left unanswered are submitted again by the next run with the checkpoint."""
    api = provider_api(client.backend)
    cancelled = []
    for entry in _journal(checkpoint).open_entries():
        if entry.id is not None:
            state = await api.state(entry.id)
            if not state.ended:
                await api.cancel(entry.id)
                cancelled.append(entry.id)
    return cancelled


def describe(rows: list[tuple[Entry, BatchState | None]]) -> list[str]:
    """One line per batch, for a terminal."""
    lines = []
    for entry, state in rows:
        where = entry.id or "(id not recorded)"
        if entry.ended:
            word = f"done ({entry.status})"
        elif state is None:
            word = "submitted (to be re-attached)"
        else:
            counts = ", ".join(f"{k}={v}" for k, v in state.counts.items())
            word = f"{state.status} {counts}"
        lines.append(f"{where}: {entry.count} requests, {word}")
    return lines
