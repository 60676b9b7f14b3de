"""CPU per event of an OpenAI Responses stream, in one run: llmfast's Responses backend
against the raw aiohttp + msgspec floor and against the openai SDK's
``client.responses.stream``.

A second floor, ``raw_typed``, is the raw client building the shared chunk type
(``ChatCompletionChunk``) for each text delta, as llmfast yields them: the difference
between the two floors is what the typed chunks cost by themselves, and what is left
between ``raw_typed`` and llmfast is llmfast's own machinery.

    .venv/bin/python benchmarks/responses_stream.py [--repeats 5] [--chunks 64]

One server process replaying the same bytes to every request (a Responses stream of
``--chunks`` text deltas plus the ~10 framing events of a real one, made once by the
test server and sent as a raw reply, so the server's own work stays small) and one
fresh worker process per measurement; clients interleaved within each repeat (raw,
llmfast, openai, raw, ...), so machine noise hits them alike. Each worker keeps
``--concurrency`` loops streaming for ``--duration`` seconds after a warm-up and reports
its CPU time per stream; divided by the events of one stream (counted by the raw
client) that is CPU µs per event. Prints the medians and their ratios to the floor.

    .venv/bin/python benchmarks/responses_stream.py --callgrind [--streams 100,400]

``--token-delay 0.0002`` paces the server instead: the test server's own Responses
stream of the same text, each event its own write, as a model's tokens arrive (the
replayed body comes in one or two reads, the worst case for a client's per-call costs
against the floor; paced, every client pays its per-read costs per event).

counts instructions instead (``valgrind --tool=callgrind``, which repeats to well under
1 % on a busy machine where timings vary by ±40 %): each client's worker runs a fixed
number of streams under callgrind, twice (after the same warm-up), and the difference
of the two runs' totals divided by the extra events is its instructions per event:
start-up, imports and warm-up cancel out. The openai SDK is left out unless named in
``--clients`` (at 70x the floor its runs take minutes under valgrind).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import msgspec
from callgrind import count_instructions, find_valgrind
from servers import ROOT, _read_url, _stop

from llmfast.types import ChatCompletionChunk, ChunkChoice, Delta

CLIENTS = ("raw", "raw_typed", "llmfast", "openai")
CALLGRIND_CLIENTS = "raw,raw_typed,llmfast"
PROMPT = "hello"


class _Event(msgspec.Struct):
    """The floor decodes what it needs of each event: its type and text delta."""

    type: str
    delta: str = ""


class Raw:
    """The floor: one aiohttp session, events split by hand, one msgspec decoder."""

    def __init__(self, url: str) -> None:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000))
        self._url = url + "/responses"
        self._body = msgspec.json.encode({"model": "m", "input": PROMPT, "stream": True})
        self._headers = {"Content-Type": "application/json", "Authorization": "Bearer k"}
        self._decode = msgspec.json.Decoder(_Event).decode

    async def stream(self) -> tuple[int, str]:
        decode = self._decode
        parts: list[str] = []
        events = 0
        done = False
        pending = b""
        async with self._session.post(self._url, data=self._body, headers=self._headers) as resp:
            async for data in resp.content.iter_any():
                blocks = (pending + data).split(b"\n\n") if pending else data.split(b"\n\n")
                pending = blocks.pop()
                for block in blocks:
                    start = block.find(b"data: ")
                    if start < 0:
                        continue
                    event = decode(block[start + 6 :])
                    events += 1
                    if event.type == "response.output_text.delta":
                        parts.append(event.delta)
                    elif event.type == "response.completed":
                        done = True
        if not done:
            raise RuntimeError("the stream ended before response.completed")
        return events, "".join(parts)

    async def aclose(self) -> None:
        await self._session.close()


class RawTyped(Raw):
    """The floor, yielding the shared chunk type: what hand-written code pays for the
    same output as llmfast's (a ``ChatCompletionChunk`` per text delta, kept, its text
    joined at the end), without llmfast's per-call machinery."""

    async def stream(self) -> tuple[int, str]:
        decode = self._decode
        chunks: list[ChatCompletionChunk] = []
        events = 0
        done = False
        pending = b""
        async with self._session.post(self._url, data=self._body, headers=self._headers) as resp:
            async for data in resp.content.iter_any():
                blocks = (pending + data).split(b"\n\n") if pending else data.split(b"\n\n")
                pending = blocks.pop()
                for block in blocks:
                    start = block.find(b"data: ")
                    if start < 0:
                        continue
                    event = decode(block[start + 6 :])
                    events += 1
                    if event.type == "response.output_text.delta":
                        delta = Delta(None, event.delta)
                        chunks.append(ChatCompletionChunk(choices=[ChunkChoice(0, delta)]))
                    elif event.type == "response.completed":
                        done = True
        if not done:
            raise RuntimeError("the stream ended before response.completed")
        return events, "".join(c.choices[0].delta.content or "" for c in chunks)


class LLMFast:
    def __init__(self, url: str) -> None:
        from llmfast import Client
        from llmfast.backends.openai_responses import OpenAIResponsesBackend

        self._client = Client(OpenAIResponsesBackend(url, api_key="k", model="m"))

    async def stream(self) -> tuple[int, str]:
        chunks = 0
        async with self._client.stream(PROMPT) as stream:
            async for _ in stream:
                chunks += 1
        return chunks, stream.completion.text or ""

    async def aclose(self) -> None:
        await self._client.aclose()


class OpenAISDK:
    def __init__(self, url: str) -> None:
        import openai

        self._client = openai.AsyncOpenAI(base_url=url, api_key="k", max_retries=0)

    async def stream(self) -> tuple[int, str]:
        events = 0
        async with self._client.responses.stream(model="m", input=PROMPT) as stream:
            async for _ in stream:
                events += 1
            final = await stream.get_final_response()
        return events, final.output_text

    async def aclose(self) -> None:
        await self._client.close()


def _make(name: str, url: str) -> Raw | LLMFast | OpenAISDK:
    if name == "raw":
        return Raw(url)
    if name == "raw_typed":
        return RawTyped(url)
    return LLMFast(url) if name == "llmfast" else OpenAISDK(url)


async def _work(name: str, url: str, concurrency: int, duration: float, warmup: float) -> Any:
    client = _make(name, url)
    try:
        expected = None
        streams = 0
        measuring = False

        async def loop(until: float) -> None:
            nonlocal expected, streams
            while time.monotonic() < until:
                _, text = await client.stream()
                if expected is None:
                    expected = text
                elif text != expected:
                    raise RuntimeError(f"{name}: a stream gave {text[:40]!r}...")
                if measuring:
                    streams += 1

        await asyncio.gather(*(loop(time.monotonic() + warmup) for _ in range(concurrency)))
        measuring = True
        cpu = time.process_time()
        await asyncio.gather(*(loop(time.monotonic() + duration) for _ in range(concurrency)))
        cpu = time.process_time() - cpu
        return {"cpu_us_per_stream": cpu / streams * 1e6, "streams": streams}
    finally:
        await client.aclose()


async def _work_fixed(name: str, url: str, concurrency: int, streams: int, warmup: int) -> Any:
    """``warmup`` streams, then ``streams`` more, ``concurrency`` at a time (for callgrind:
    a fixed amount of work, however slow the run)."""
    client = _make(name, url)
    try:
        texts: set[str] = set()

        async def run(count: int) -> None:
            left = count

            async def loop() -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    texts.add((await client.stream())[1])

            await asyncio.gather(*(loop() for _ in range(concurrency)))

        await run(warmup)
        await run(streams)
        if len(texts) != 1:
            raise RuntimeError(f"{name}: the streams gave {len(texts)} different texts")
        return {"streams": streams}
    finally:
        await client.aclose()


async def _count_events(url: str) -> int:
    raw = Raw(url)
    try:
        events, _ = await raw.stream()
    finally:
        await raw.aclose()
    return events


async def _serve(chunks: int, token_delay: float) -> None:
    """Serve one captured Responses stream, byte for byte, to every request; or, with a
    ``token_delay``, the test server's own stream of the same text, an event a write."""
    from llmfast.testing import MockServer, Reply

    words = " ".join(f"w{k}" for k in range(chunks))
    if token_delay > 0:
        paced = Reply.text(words + " ", token_delay=token_delay)
        async with MockServer(default=paced, record=False) as server:
            print(f"paced server listening on {server.url}", flush=True)
            await asyncio.Event().wait()
    async with MockServer() as capture, aiohttp.ClientSession() as session:
        body = {"model": "m", "input": words, "stream": True}
        async with session.post(capture.url + "/responses", json=body) as resp:
            stream = await resp.read()
    reply = Reply.raw(stream, content_type="text/event-stream")
    async with MockServer(default=reply, record=False) as server:
        print(f"replay server listening on {server.url}", flush=True)
        await asyncio.Event().wait()


@contextlib.contextmanager
def _replay_server(chunks: int, token_delay: float) -> Iterator[str]:
    command = [sys.executable, __file__, "--serve", str(chunks), "--token-delay", str(token_delay)]
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            yield _read_url(proc, stderr)
        finally:
            _stop(proc)
            if proc.stdout is not None:
                proc.stdout.close()


def _run_worker(name: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", name, "--url", url]
    command += ["--concurrency", str(args.concurrency), "--duration", str(args.duration)]
    command += ["--warmup", str(args.warmup)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{name} worker failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _callgrind_worker(name: str, url: str, streams: int, args: argparse.Namespace) -> int:
    """Instructions of one worker process running ``streams`` streams under callgrind."""
    command = [sys.executable, __file__, "--worker", name, "--url", url]
    command += ["--concurrency", str(args.concurrency), "--fixed-streams", str(streams)]
    command += ["--warmup-streams", str(args.warmup_streams)]
    try:
        return count_instructions(command)
    except RuntimeError as exc:
        raise SystemExit(f"{name} worker: {exc}") from None


def _callgrind(args: argparse.Namespace, clients: list[str]) -> int:
    if find_valgrind() is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    low, high = (int(n) for n in args.streams_pair.split(","))
    per_event: dict[str, float] = {}
    with _replay_server(args.chunks, args.token_delay) as url:
        events = asyncio.run(_count_events(url))
        for name in clients:
            counts = [_callgrind_worker(name, url, n, args) for n in (low, high)]
            per_event[name] = (counts[1] - counts[0]) / ((high - low) * events)
            print(
                f"{name}: {counts[0]:,} instructions for {low} streams, {counts[1]:,} for {high}",
                file=sys.stderr,
                flush=True,
            )
    print(
        f"\ncallgrind, c={args.concurrency}, {events}-event streams ({args.chunks} text deltas,"
        f" {_pacing(args)}):"
        f" instructions per event, from the difference of {low} and {high} streams"
    )
    print("| client | instructions/event | ratio to raw |")
    print("|---|---:|---:|")
    base = per_event.get("raw")
    for name in clients:
        ratio = f"{per_event[name] / base:.3f}x" if base else ""
        print(f"| {name} | {per_event[name]:,.0f} | {ratio} |")
    return 0


def _pacing(args: argparse.Namespace) -> str:
    if args.token_delay > 0:
        return f"an event a write every {args.token_delay * 1000:g} ms"
    return "the whole body in one write"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--duration", type=float, default=1.5)
    parser.add_argument("--warmup", type=float, default=0.4)
    parser.add_argument("--chunks", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--clients", default=None, help="comma-separated (default: all)")
    parser.add_argument("--callgrind", action="store_true", help="count instructions instead")
    parser.add_argument(
        "--streams", dest="streams_pair", default="100,400", help="callgrind: two stream counts"
    )
    parser.add_argument("--warmup-streams", type=int, default=50, help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--fixed-streams", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--token-delay",
        type=float,
        default=0.0,
        help="seconds between the server's events (0: the whole body in one write)",
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        asyncio.run(_serve(args.serve, args.token_delay))
        return 0
    if args.worker:
        if args.fixed_streams is not None:
            work = _work_fixed(
                args.worker, args.url, args.concurrency, args.fixed_streams, args.warmup_streams
            )
        else:
            work = _work(args.worker, args.url, args.concurrency, args.duration, args.warmup)
        print(json.dumps(asyncio.run(work)))
        return 0
    default = CALLGRIND_CLIENTS if args.callgrind else ",".join(CLIENTS)
    clients = [c for c in (args.clients or default).split(",") if c]
    if args.callgrind:
        return _callgrind(args, clients)
    figures: dict[str, list[float]] = {name: [] for name in clients}
    with _replay_server(args.chunks, args.token_delay) as url:
        events = asyncio.run(_count_events(url))
        for repeat in range(args.repeats):
            for name in clients:
                result = _run_worker(name, url, args)
                per_event = result["cpu_us_per_stream"] / events
                figures[name].append(per_event)
                print(
                    f"[{repeat + 1}/{args.repeats}] {name}: {per_event:.2f} µs/event",
                    file=sys.stderr,
                    flush=True,
                )
    print(
        f"\n{args.repeats} interleaved repeats, c={args.concurrency}, {events}-event streams"
        f" ({args.chunks} text deltas, {_pacing(args)}), CPU µs per event"
    )
    print("| client | µs/event (median) | ratio to raw (of medians) | median of paired ratios |")
    print("|---|---:|---:|---:|")
    base = figures.get("raw")
    for name in clients:
        mine = statistics.median(figures[name])
        if base:
            floor = statistics.median(base)
            paired = statistics.median(m / b for m, b in zip(figures[name], base, strict=True))
            print(f"| {name} | {mine:.2f} | {mine / floor:.2f}x | {paired:.2f}x |")
        else:
            print(f"| {name} | {mine:.2f} | | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
