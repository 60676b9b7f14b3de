"""llmfast in 60 seconds: a chat call, a streamed call and an embedding.

Runs against the provider configured in the environment (``LLMFAST_BASE_URL`` or
``OPENAI_BASE_URL``, with ``OPENAI_API_KEY`` and ``LLMFAST_MODEL``); with none
configured, it starts llmfast's built-in local server and says so.

    python examples/quickstart.py
"""

from __future__ import annotations

import asyncio
import os
import time
from contextlib import AsyncExitStack

import llmfast


async def main() -> None:
    async with AsyncExitStack() as stack:
        configured = any(
            os.environ.get(name)
            for name in ("LLMFAST_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY")
        )
        if configured:
            client = llmfast.Client(model=os.environ.get("LLMFAST_MODEL", "gpt-4o-mini"))
            print(f"Using the configured provider: {client.backend!r}")
        else:
            from llmfast.testing import MockServer

            server = await stack.enter_async_context(MockServer())
            client = llmfast.Client(base_url=server.url, model="mock-model")
            print(f"No provider configured: using llmfast's built-in local server at {server.url}")
        await stack.enter_async_context(client)

        started = time.perf_counter()
        reply = await client.chat("Say hello to llmfast in five words.", max_tokens=20)
        print(
            f"chat   -> {reply.text!r}  ({(time.perf_counter() - started) * 1000:.1f} ms, "
            f"{reply.usage.total_tokens if reply.usage else '?'} tokens)"
        )

        print("stream -> ", end="", flush=True)
        async with client.stream("Count from one to five, please.", max_tokens=40) as stream:
            async for text in stream.text_deltas():
                print(text, end="", flush=True)
        print(f"  [finish_reason={stream.completion.finish_reason}]")

        replies = await asyncio.gather(*(client.chat(f"Echo {i}", max_tokens=5) for i in range(20)))
        print(f"gather -> 20 concurrent calls, first: {replies[0].text!r}")

        if not configured or os.environ.get("LLMFAST_EMBED_MODEL"):
            model = os.environ.get("LLMFAST_EMBED_MODEL", "mock-embed")
            result = await client.embed(["fast", "robust"], model=model)
            print(f"embed  -> {len(result.vectors)} vectors of {len(result.vectors[0])} floats")
        print(f"client -> {client!r}")


if __name__ == "__main__":
    asyncio.run(main())
