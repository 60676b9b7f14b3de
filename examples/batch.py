"""A resumable batch: 300 prompts, 32 at a time, a progress bar and a checkpoint.

The first pass is interrupted after 120 results (as a crash or Ctrl-C would); the
second pass, with the same checkpoint file, hands the finished results back at once
(``resumed=True``) and sends only the rest. Runs against the provider configured in
the environment (``LLMFAST_BASE_URL`` or ``OPENAI_BASE_URL``, with ``OPENAI_API_KEY``
and ``LLMFAST_MODEL``); with none configured, it starts llmfast's built-in local
server and says so.

    python examples/batch.py
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator
from contextlib import AsyncExitStack

import llmfast
from llmfast.batch import run_batch


def prompts() -> Iterator[str]:
    """A lazy input: a generator is read as the batch goes, never all at once."""
    for i in range(300):
        yield f"Write a haiku about the number {i}."


def count_lines(path: str) -> int:
    with open(path, "rb") as file:
        return sum(1 for _ in file)


async def main() -> None:
    async with AsyncExitStack() as stack:
        configured = any(
            os.environ.get(name)
            for name in ("LLMFAST_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY")
        )
        if configured:
            client = llmfast.Client(model=os.environ.get("LLMFAST_MODEL", "gpt-4o-mini"))
            print("Using the configured provider")
        else:
            from llmfast.testing import MockServer, Reply

            server = await stack.enter_async_context(MockServer(default=Reply.echo(delay=0.01)))
            client = llmfast.Client(base_url=server.url, model="mock-model")
            print(f"No provider configured: using llmfast's built-in local server at {server.url}")
        await stack.enter_async_context(client)
        folder = stack.enter_context(tempfile.TemporaryDirectory())
        checkpoint = os.path.join(folder, "haikus.jsonl")

        # First pass: stop after 120 results. Leaving `async with` cancels the calls
        # in flight; everything that finished is already in the checkpoint.
        async with run_batch(
            client, prompts(), concurrency=32, checkpoint=checkpoint, max_tokens=60
        ) as batch:
            async for result in batch:
                if result.index == 119:
                    break
        print(f"pass 1 -> interrupted: {batch.succeeded} finished and recorded in {checkpoint}")

        # Second pass: same input, same checkpoint. Results come back in input order.
        batch = run_batch(client, prompts(), concurrency=32, checkpoint=checkpoint, max_tokens=60)
        results = await batch  # awaiting a batch gives the list of every result
        print(
            f"pass 2 -> {len(results)} results: {batch.resumed} resumed from the checkpoint, "
            f"{batch.succeeded} sent now, {batch.failed} failed, {batch.tokens} tokens"
        )
        first = results[0]
        print(f"result -> #{first.index} resumed={first.resumed}: {first.text!r}")
        print(f"file   -> {count_lines(checkpoint)} lines, one per finished request")


if __name__ == "__main__":
    asyncio.run(main())
