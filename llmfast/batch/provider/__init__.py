"""Provider batch APIs as a batch transport: ``client.map(..., via="batch")`` runs the
items through OpenAI's Batch API or Anthropic's Message Batches at the batch price,
with the same results and checkpoint as the online runner, and submits nothing twice.

- ``batch``: ``ProviderBatch`` (what ``client.map`` returns) and its options;
- ``engine``: submit, poll and collect; ``packer``: request files sealed at the
  limits; ``online``: the ``fallback_after`` path; ``report``: each item's ``done``
  event (Stats, OTel); ``crash``: the crash points the tests kill a run at;
- ``journal``: the crash-safe record of every batch and the items it holds;
- ``spool``: the run's requests on disk, by index;
- ``api``, ``openai_files``, ``anthropic_batches``: the providers' endpoints;
- ``control``: status and cancel of a checkpoint's batches (the CLI's).
"""

from llmfast.batch.provider.anthropic_batches import ANTHROPIC_LIMITS
from llmfast.batch.provider.api import BatchLimits, BatchState
from llmfast.batch.provider.batch import ProviderBatch, ProviderBatchOptions, provider_api
from llmfast.batch.provider.engine import BATCH_TIER
from llmfast.batch.provider.openai_files import OPENAI_LIMITS

__all__ = [
    "ANTHROPIC_LIMITS",
    "BATCH_TIER",
    "OPENAI_LIMITS",
    "BatchLimits",
    "BatchState",
    "ProviderBatch",
    "ProviderBatchOptions",
    "provider_api",
]
