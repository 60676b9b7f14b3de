"""Structured output and tools: typed replies, partial objects while streaming, a tool loop.

Runs against the provider configured in the environment (``LLMFAST_BASE_URL`` or
``OPENAI_BASE_URL``, with ``OPENAI_API_KEY`` and ``LLMFAST_MODEL``); with none
configured, it starts llmfast's built-in local server, which answers a structured
request with a value valid under its schema by itself, and says so.

    python examples/structured_output.py
"""

from __future__ import annotations

import asyncio
import os

import msgspec

import llmfast
from llmfast.testing import MockServer, Reply


class Line(msgspec.Struct):
    item: str
    qty: int = 1


class Invoice(msgspec.Struct):
    customer: str
    lines: list[Line]
    note: str | None = None


@llmfast.tool
def unit_price(item: str) -> float:
    """The price of one item, in euros.

    Args:
        item: What is sold.
    """
    return {"tea": 2.5, "cake": 4.0}.get(item, 1.0)


async def run(client: llmfast.Client, local: MockServer | None) -> None:
    reply = await client.chat("Bill Ada for two teas and a cake.", output=Invoice)
    invoice = reply.output  # an Invoice, validated
    lines = len(invoice.lines)
    print(f"output -> {type(invoice).__name__} with {lines} line(s), attempts={reply.attempts}")

    async with client.stream("Bill Ada again.", output=Invoice) as stream:
        count = 0
        async for _partial in stream.partials():  # Invoice(customer='A'), ... as it grows
            count += 1
    print(f"stream -> {count} partial(s), then {type(stream.output).__name__}")

    if local is not None:  # script the tool calls the local server can't invent
        local.enqueue(
            Reply.tool_calls([{"name": "unit_price", "arguments": {"item": "tea"}}]),
            Reply.text("Two teas cost 5 euros."),
        )
    run_ = await client.run_tools("What do two teas cost?", [unit_price])
    print(f"tools  -> {run_.text!r} after {run_.steps} model calls")


async def main() -> None:
    configured = any(
        os.environ.get(name) for name in ("LLMFAST_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY")
    )
    if configured:
        print("Using the configured provider")
        model = os.environ.get("LLMFAST_MODEL", "gpt-4o-mini")
        async with llmfast.Client(model=model) as client:
            await run(client, None)
        return
    async with MockServer() as server, llmfast.Client(base_url=server.url, model="mock") as client:
        print(f"No provider configured: using llmfast's built-in local server at {server.url}")
        await run(client, server)


if __name__ == "__main__":
    asyncio.run(main())
