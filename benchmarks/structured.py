"""Structured output: CPU per call against a plain call, the openai SDK's ``.parse()``
and instructor on the same reply, and partial-JSON parsing of a streamed output.

    python benchmarks/structured.py [--calls 400] [--repeats 5] [--concurrency 16]

The reply (an invoice of 20 lines as JSON) comes from ``python -m llmfast.testing`` in
its own process; only the client process's CPU time is measured. Scenarios run
interleaved, ``--repeats`` times, and the medians are reported, with ratios to the raw
aiohttp + msgspec floor (post, decode the completion, decode the content into the
struct). The partial-JSON part streams one output of 10 KB, 100 KB and 1 MB in 1,000
chunks and takes a snapshot after each: llmfast's incremental parser against
re-parsing the prefix with ``pydantic_core.from_json(allow_partial=True)`` per chunk
(what frameworks that show partial objects do).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import msgspec

import llmfast
from llmfast.structured import output_spec
from llmfast.structured.call import structured_chat
from llmfast.structured.partial import PartialJSON
from llmfast.structured.typed_partial import PartialMaker


class Line(msgspec.Struct):
    item: str
    qty: int
    price: float


class Invoice(msgspec.Struct):
    number: int
    customer: str
    lines: list[Line]
    note: str | None = None


REPLY = {
    "number": 1042,
    "customer": "Ada Lovelace",
    "lines": [{"item": f"item {i}", "qty": i % 5 + 1, "price": 9.5 + i} for i in range(20)],
    "note": None,
}


class _Message(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    message: _Message


class _Completion(msgspec.Struct):
    choices: list[_Choice]


def _start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmfast.testing", "--text", json.dumps(REPLY)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, line.rsplit(" ", 1)[1].strip()


Scenario = Callable[[], Awaitable[Any]]
"""Makes a client: returns ``(call, close)``, two coroutine functions."""


async def _run(make: Scenario, calls: int, concurrency: int) -> float:
    """CPU seconds per call for ``calls`` calls, ``concurrency`` at a time."""
    made: tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[Any]]] = await make()
    call, close = made
    for _ in range(20):  # warm-up: connections, caches
        await call()
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            await call()

    start = time.process_time()
    await asyncio.gather(*(one() for _ in range(calls)))
    spent = time.process_time() - start
    await close()
    return spent / calls


def scenarios(url: str) -> dict[str, Scenario]:
    messages: Any = [{"role": "user", "content": "Bill Ada."}]
    spec = output_spec(Invoice)
    decode_completion = msgspec.json.Decoder(_Completion).decode
    decode_invoice = msgspec.json.Decoder(Invoice).decode
    body = msgspec.json.encode(
        {"model": "m", "messages": messages, "response_format": spec.response_format()}
    )

    async def raw() -> Any:
        session = aiohttp.ClientSession()
        target = url + "/chat/completions"
        headers = {"Content-Type": "application/json", "Authorization": "Bearer x"}

        async def call() -> Any:
            async with session.post(target, data=body, headers=headers) as resp:
                data = await resp.read()
            content = decode_completion(data).choices[0].message.content
            return decode_invoice(content or "")

        return call, session.close

    async def plain() -> Any:
        client = llmfast.Client(base_url=url, model="m", api_key="x", layers=[])

        async def call() -> Any:
            return await client.chat(messages, response_format=spec.response_format())

        return call, client.aclose

    async def structured() -> Any:
        client = llmfast.Client(base_url=url, model="m", api_key="x", layers=[])

        async def call() -> Any:
            return await structured_chat(client, messages, spec)

        return call, client.aclose

    out: dict[str, Scenario] = {
        "raw aiohttp+msgspec": raw,
        "llmfast plain": plain,
        "llmfast structured": structured,
    }
    try:
        import instructor
        import openai
        import pydantic
    except ImportError:  # pragma: no cover - bench extras not installed
        return out

    class PLine(pydantic.BaseModel):
        item: str
        qty: int
        price: float

    class PInvoice(pydantic.BaseModel):
        number: int
        customer: str
        lines: list[PLine]
        note: str | None = None

    async def sdk_parse() -> Any:
        client = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0)

        async def call() -> Any:
            return await client.beta.chat.completions.parse(
                model="m", messages=messages, response_format=PInvoice
            )

        return call, client.close

    async def with_instructor() -> Any:
        raw_client = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
        client = instructor.from_openai(raw_client, mode=instructor.Mode.JSON)

        async def call() -> Any:
            return await client.chat.completions.create(
                model="m",
                messages=copy.deepcopy(messages),  # instructor edits them in place
                response_model=PInvoice,
                max_retries=0,
            )

        return call, raw_client.close

    out["openai .parse()"] = sdk_parse
    out["instructor"] = with_instructor
    return out


class _DocLine(msgspec.Struct):
    item: str
    qty: int
    price: float
    note: str


class _Doc(msgspec.Struct):
    lines: list[_DocLine]


def _line(i: int) -> dict[str, Any]:
    return {"item": f"item {i}", "qty": i, "price": i * 1.5, "note": "x" * 40}


def partial_figures(sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)) -> list[str]:
    """Total ms to stream one output of each size in 1,000 chunks, snapshot per chunk."""
    from_json: Any
    try:
        from pydantic_core import from_json
    except ImportError:  # pragma: no cover
        from_json = None
    rows = []
    for size in sizes:
        count = size // len(json.dumps(_line(0))) + 1
        doc = json.dumps({"lines": [_line(i) for i in range(count)]})
        step = len(doc) // 1000 + 1
        chunks = [doc[j : j + step] for j in range(0, len(doc), step)]
        start = time.process_time()
        parser = PartialJSON()
        for chunk in chunks:
            parser.feed(chunk)
            parser.snapshot()
        ours = (time.process_time() - start) * 1e3
        start = time.process_time()
        parser = PartialJSON()
        maker = PartialMaker(_Doc, parser.closed_containers)
        for chunk in chunks:
            parser.feed(chunk)
            maker.make(parser.snapshot())
        typed = (time.process_time() - start) * 1e3
        theirs = float("nan")
        if from_json is not None and size <= 100_000:
            start = time.process_time()
            prefix = ""
            for chunk in chunks:
                prefix += chunk
                from_json(prefix, allow_partial=True)
            theirs = (time.process_time() - start) * 1e3
        rows.append(
            f"| {len(doc) / 1000:.0f} KB | {len(chunks)} "
            f"| {ours:.1f} ms ({ours * 1e6 / len(doc):.0f} ns/char) | {typed:.1f} ms "
            f"| {theirs:.1f} ms |"
        )
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    proc, url = _start_server()
    try:
        table = scenarios(url)
        results: dict[str, list[float]] = {name: [] for name in table}
        for _ in range(args.repeats):
            for name, make in table.items():
                results[name].append(await _run(make, args.calls, args.concurrency))
    finally:
        proc.terminate()
        proc.wait()
    medians = {name: statistics.median(values) for name, values in results.items()}
    floor = medians["raw aiohttp+msgspec"]
    plain = medians["llmfast plain"]
    print(f"CPU per structured call, c={args.concurrency}, medians of {args.repeats}")
    print("| client | µs/call | ÷ raw | ÷ llmfast plain |")
    print("|---|--:|--:|--:|")
    for name, value in medians.items():
        print(f"| {name} | {value * 1e6:.0f} | {value / floor:.2f}× | {value / plain:.2f}× |")
    print()
    print("Partial JSON, one output streamed in ~1,000 chunks, a snapshot after each")
    print("| output | chunks | llmfast PartialJSON | + typed partials | pydantic_core re-parse |")
    print("|---|--:|--:|--:|--:|")
    for row in partial_figures():
        print(row)


if __name__ == "__main__":
    asyncio.run(main())
