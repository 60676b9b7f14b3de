"""CPU time per in-memory cache hit, and what coalescing saves (requests reaching the server)."""

from __future__ import annotations

import asyncio
import time

import llmfast
from llmfast.layers.cache import Cache
from llmfast.layers.coalesce import Coalesce
from llmfast.testing import MockServer


async def main() -> None:
    async with MockServer() as server:
        async with llmfast.Client(base_url=server.url, model="m", layers=[Cache()]) as client:
            messages = [
                llmfast.SystemMessage("You are a helpful assistant."),
                llmfast.UserMessage("What is the capital of France? Answer in one word."),
            ]
            await client.chat(messages, temperature=0)
            n = 20_000
            for label, stream in (("chat", False), ("stream", True)):
                start = time.process_time()
                for _ in range(n):
                    if stream:
                        async with client.stream(messages, temperature=0) as s:
                            async for _chunk in s:
                                pass
                    else:
                        await client.chat(messages, temperature=0)
                per_hit = (time.process_time() - start) / n * 1e6
                print(f"in-memory cache hit, {label}: {per_hit:.1f} µs CPU per call")
            print(f"requests reaching the server: {server.request_count} (1 chat + 1 stream)")

        server.reset()
        for layers, label in (([], "without coalescing"), ([Coalesce()], "with coalescing")):
            async with llmfast.Client(base_url=server.url, model="m", layers=layers) as client:
                before = server.request_count
                start = time.perf_counter()
                await asyncio.gather(*(client.chat("same", temperature=0) for _ in range(1000)))
                took = time.perf_counter() - start
                sent = server.request_count - before
            print(f"1000 identical concurrent calls {label}: {sent} requests, {took * 1000:.0f} ms")


asyncio.run(main())
