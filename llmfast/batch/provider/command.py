"""The CLI's provider-batch parts: ``llmfast batch --provider-batch`` and
``--status`` / ``--cancel CHECKPOINT`` (see ``llmfast.cli``)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from llmfast.batch.provider.batch import ProviderBatch, ProviderBatchOptions
from llmfast.batch.provider.control import cancel, describe, status
from llmfast.batch.summary import checkpoint_stats, cost_line

if TYPE_CHECKING:
    from llmfast.client import Client

__all__ = ["control", "provider_batch"]


def provider_batch(
    args: argparse.Namespace, client: Client, items: Iterator[Any], total: int, params: Any
) -> ProviderBatch:
    """The provider batch the command line asks for (results in ``--output``)."""
    options = ProviderBatchOptions(
        poll_interval=args.poll_interval, fallback_after=args.fallback_after
    )
    return ProviderBatch(
        client,
        items,
        ordered=False,
        stop_on_error=args.stop_on_error,
        checkpoint=args.output,
        fsync=not args.no_fsync,
        progress=args.progress,
        total=total,
        options=options,
        **params,
    )


def control(client: Client, status_of: str | None, cancel_of: str | None) -> int:
    """``--status`` or ``--cancel``: print the checkpoint's batches (and, for
    ``--status``, what the results recorded so far cost and saved); exit status 0."""

    async def run() -> list[str]:
        async with client:
            if cancel_of is not None:
                ids = await cancel(client, cancel_of)
                return [f"cancelled {batch_id}" for batch_id in ids] or ["nothing to cancel"]
            assert status_of is not None
            return describe(await status(client, status_of))

    for line in asyncio.run(run()):
        print(line, file=sys.stdout)
    if status_of is not None and os.path.exists(status_of):
        snapshot = checkpoint_stats(status_of)
        done = sum(snapshot.outcomes.get(kind, {}).get("ok", 0) for kind in ("chat", "embed"))
        print(f"{done} results recorded: {cost_line(snapshot)}", file=sys.stdout)
    return 0
