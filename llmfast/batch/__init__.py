"""Batches: ``client.map(...)`` runs many chat requests with bounded concurrency,
results in order, failures captured, a progress bar and a resumable checkpoint.

- ``runner``: ``Batch``; ``base``: what it shares with the provider batch (``provider``);
- ``result``: ``BatchResult``, one item's outcome;
- ``items``: what an item may be, normalized into a request;
- ``summary``: what a job cost, for the CLI;
- ``abort``: when failures stop a batch by themselves;
- ``lines``: reading a JSON Lines file of items (the CLI's input);
- ``llmfast.checkpoint``: the append-only record of finished items.
"""

from llmfast.batch.abort import ABORT_AFTER, AbortPolicy
from llmfast.batch.items import NO_MODEL, BatchItem, to_chat_request
from llmfast.batch.runner import ORDERED_WINDOW, Batch, BatchResult, run_batch
from llmfast.checkpoint import CheckpointError
from llmfast.errors import BatchAbortedError

__all__ = [
    "ABORT_AFTER",
    "NO_MODEL",
    "ORDERED_WINDOW",
    "AbortPolicy",
    "Batch",
    "BatchAbortedError",
    "BatchItem",
    "BatchResult",
    "CheckpointError",
    "run_batch",
    "to_chat_request",
]
