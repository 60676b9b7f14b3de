"""The process the crash tests kill: a provider-batch run of ``ITEMS`` prompts in
batches of ``PER_BATCH``, armed to SIGKILL itself at a crash point. Forked from a
forkserver that imported this module (and so llmfast) once, so a run costs a fork,
not an interpreter start."""

from __future__ import annotations

import asyncio

from llmfast import Client
from llmfast.batch.provider import BatchLimits, ProviderBatchOptions
from llmfast.batch.provider.crash import arm

ITEMS = 23
PER_BATCH = 5


async def _main(provider: str, url: str, checkpoint: str) -> None:
    limits = BatchLimits(PER_BATCH, 1 << 20, max_in_flight=2)
    options = ProviderBatchOptions(limits=limits, poll_interval=0.001)
    async with Client(provider=provider, base_url=url, api_key="sk-test", model="m") as client:
        prompts = [f"prompt {i}" for i in range(ITEMS)]
        batch = client.map(
            prompts,
            via="batch",
            checkpoint=checkpoint,
            ordered=False,
            progress=False,
            batch_options=options,
        )
        async for _ in batch:
            pass


def run(provider: str, url: str, checkpoint: str, crash: str) -> None:
    """Run the job to its end, or until the crash point ``crash`` (``point:n``) kills it."""
    arm(crash)
    asyncio.run(_main(provider, url, checkpoint))
