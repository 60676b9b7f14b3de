"""CPU per pydantic-ai agent run: on LLMFastModel, on pydantic-ai's own OpenAIChatModel
(the openai SDK), and llmfast's native call as the floor, on the same local server.

Run: python benchmarks/pydantic_ai_overhead.py  (needs ``pip install -e '.[bench]'
'pydantic-ai-slim[openai]'``; prints µs of CPU per call, medians of interleaved runs)

The mock server runs on a thread of its own and the clients on the main thread, whose
CPU time (``time.thread_time``) is what is counted: the work of the agent, the model
adapter and the HTTP client, not the server's. Each run is ``CALLS`` sequential calls
(a 64-word reply; streamed ones read to the end), the variants are interleaved, and the
median of ``REPEATS`` runs is reported with its ratio to the llmfast floor.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

import llmfast
from llmfast.integrations.pydantic_ai import LLMFastModel
from llmfast.testing import MockServer, Reply

CALLS = 200
REPEATS = 7
PROMPT = "Tell me about the fox."
REPLY = " ".join(["word"] * 64)

Call = Callable[[], Awaitable[object]]


async def measure(call: Call) -> float:
    """One run of ``CALLS`` calls: µs of this thread's CPU per call."""
    started = time.thread_time()
    for _ in range(CALLS):
        await call()
    return (time.thread_time() - started) / CALLS * 1e6


async def main() -> None:
    with MockServer.in_thread(default=Reply.text(REPLY), record=False) as server:
        client = llmfast.Client(base_url=server.url, api_key="sk-bench", model="mock-model")
        ours = Agent(LLMFastModel(client))
        provider = OpenAIProvider(base_url=server.url, api_key="sk-bench")
        theirs = Agent(OpenAIChatModel("mock-model", provider=provider))

        async def native() -> object:
            return await client.chat(PROMPT)

        async def native_stream() -> object:
            async with client.stream(PROMPT) as stream:
                return await stream.collect()

        def run(agent: Agent[None, str]) -> Call:
            async def call() -> object:
                return (await agent.run(PROMPT)).output

            return call

        def run_stream(agent: Agent[None, str]) -> Call:
            async def call() -> object:
                async with agent.run_stream(PROMPT) as streamed:
                    return await streamed.get_output()

            return call

        variants: dict[str, Call] = {
            "llmfast client.chat (floor)": native,
            "Agent(LLMFastModel)": run(ours),
            "Agent(OpenAIChatModel)": run(theirs),
            "llmfast client.stream (floor)": native_stream,
            "Agent(LLMFastModel) run_stream": run_stream(ours),
            "Agent(OpenAIChatModel) run_stream": run_stream(theirs),
        }
        for call in variants.values():  # warm up: connections, caches, imports
            for _ in range(20):
                await call()
        runs: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(REPEATS):
            for name, call in variants.items():
                runs[name].append(await measure(call))
        await client.aclose()
        await provider.client.close()
    medians = {name: statistics.median(values) for name, values in runs.items()}
    print(f"CPU per call, median of {REPEATS} interleaved runs of {CALLS} calls")
    for name, value in medians.items():
        floor = medians[
            "llmfast client.stream (floor)" if "stream" in name else "llmfast client.chat (floor)"
        ]
        print(f"  {name:36} {value:8.0f} µs  {value / floor:5.2f}x the floor")
    for mode in ("", " run_stream"):
        ratio = medians[f"Agent(OpenAIChatModel){mode}"] / medians[f"Agent(LLMFastModel){mode}"]
        print(f"  OpenAIChatModel / LLMFastModel{mode or ' run'}: {ratio:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
