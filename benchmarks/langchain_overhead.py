"""CPU per call through LangChain: ``ChatLLMFast`` vs LangChain's ``ChatOpenAI``.

Run: python benchmarks/langchain_overhead.py [--calls 300] [--repeats 5]
(needs the ``bench`` extra: langchain-core and langchain-openai)

One local server (llmfast's mock server in its own process, a 64-word reply, 67
chunks when streamed) and four clients in this process, each making calls one at a
time: the hand-written aiohttp + msgspec lower bound (``client_raw.py``), llmfast's
own ``Client.chat``/``stream``, ``ChatLLMFast.ainvoke``/``astream`` on that client,
and ``ChatOpenAI.ainvoke``/``astream`` (``stream_usage=True``, so both streams carry
usage). Each measurement is ``--calls`` calls after ``gc.collect()``, CPU time of this
process per call; the clients take turns, ``--repeats`` times, and the median is
reported, with its ratio to the lower bound and to llmfast's native call.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from client_llmfast import LLMFastClient
from client_raw import RawClient
from clients import API_KEY, MAX_TOKENS, MODEL, PROMPT
from langchain_openai import ChatOpenAI
from pydantic import SecretStr
from servers import mock_server

from llmfast.integrations.langchain import ChatLLMFast

Call = Callable[[], Awaitable[Any]]


async def _drain(stream: Any) -> int:
    count = 0
    async for _ in stream:
        count += 1
    return count


def calls(url: str) -> tuple[dict[str, tuple[Call, Call]], Callable[[], Awaitable[None]]]:
    """(chat, stream) of every client, and how to close them."""
    raw = RawClient(url)
    native = LLMFastClient(url)
    ours = ChatLLMFast(client=native._client, max_tokens=MAX_TOKENS)
    theirs = ChatOpenAI(
        model=MODEL,
        base_url=url,
        api_key=SecretStr(API_KEY),
        max_completion_tokens=MAX_TOKENS,
        stream_usage=True,
    )

    async def close() -> None:
        await raw.aclose()
        await native.aclose()

    table: dict[str, tuple[Call, Call]] = {
        "raw aiohttp+msgspec": (lambda: raw.chat(PROMPT), lambda: raw.stream(PROMPT)),
        "llmfast Client": (lambda: native.chat(PROMPT), lambda: native.stream(PROMPT)),
        "ChatLLMFast": (lambda: ours.ainvoke(PROMPT), lambda: _drain(ours.astream(PROMPT))),
        "ChatOpenAI": (lambda: theirs.ainvoke(PROMPT), lambda: _drain(theirs.astream(PROMPT))),
    }
    return table, close


async def measure(call: Call, n: int) -> float:
    """µs of CPU per call over ``n`` calls."""
    gc.collect()
    start = time.process_time()
    for _ in range(n):
        await call()
    return (time.process_time() - start) / n * 1e6


async def main(n: int, repeats: int) -> None:
    with mock_server(chunks=64) as server:
        table, close = calls(server.url)
        try:
            for chat, stream in table.values():  # warm up: connections, imports, caches
                for _ in range(20):
                    await chat()
                    await stream()
            for mode in (0, 1):
                runs: dict[str, list[float]] = {name: [] for name in table}
                for _ in range(repeats):
                    for name, pair in table.items():  # interleaved
                        runs[name].append(await measure(pair[mode], n if mode == 0 else n // 3))
                medians = {name: statistics.median(values) for name, values in runs.items()}
                floor, native = medians["raw aiohttp+msgspec"], medians["llmfast Client"]
                print(f"\n{'streaming' if mode else 'non-streaming'} (median of {repeats})")
                for name, value in medians.items():
                    print(
                        f"  {name:22} {value:8.0f} µs CPU/call  {value / floor:5.2f}x floor"
                        f"  {value / native:5.2f}x llmfast"
                    )
                ratio = medians["ChatOpenAI"] / medians["ChatLLMFast"]
                print(f"  ChatOpenAI / ChatLLMFast: {ratio:.2f}x")
        finally:
            await close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per measurement (chat)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.repeats))
