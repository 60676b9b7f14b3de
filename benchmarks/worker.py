"""Measure one client in one scenario; print one JSON line.

    python benchmarks/worker.py --client raw --url http://127.0.0.1:PORT/v1 \
        --mode stream --concurrency 128 --duration 3

Run it in a fresh process per measurement (``run.py`` does), so one library's imports,
caches and garbage never weigh on another's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from clients import CLIENTS, DIMENSIONS, EXTRA_CLIENTS, PROMPT, TEXTS, BenchClient, create

Op = Callable[[], Awaitable[int]]


@dataclass
class Result:
    """One measured batch; times are for the client process only."""

    client: str
    mode: str
    concurrency: int
    requests: int
    chunks: int
    cpu_s: float
    wall_s: float
    cpu_us_per_request: float
    cpu_us_per_chunk: float | None
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    warmup_requests: int
    server_cpu_us_per_request: float | None
    server_cpu_share: float | None
    reply_chars: int
    peak_rss_mb: float


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[index]


def _proc_cpu_s(pid: int | None) -> float | None:
    """User+system CPU seconds of another process (Linux /proc), or None."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _operation(client: BenchClient, mode: str, replies: list[str]) -> Op:
    if mode == "chat":

        async def chat() -> int:
            text = await client.chat(PROMPT)
            if not text:
                raise RuntimeError("empty reply")
            if not replies:
                replies.append(text)
            return 0

        return chat

    if mode == "embed":
        texts = list(TEXTS)
        expected = len(TEXTS) * DIMENSIONS

        async def embed() -> int:
            floats = await client.embed(texts)
            if floats != expected:
                raise RuntimeError(f"expected {expected} floats, received {floats}")
            if not replies:
                replies.append(str(floats))
            return 0

        return embed

    async def stream() -> int:
        chunks, text = await client.stream(PROMPT)
        if not text:
            raise RuntimeError("empty streamed reply")
        if not replies:
            replies.append(text)
        return chunks

    return stream


async def _batch(op: Op, concurrency: int, duration: float) -> tuple[list[float], int]:
    """Run ``concurrency`` loops calling ``op`` until ``duration`` has passed."""
    perf_counter = time.perf_counter
    deadline = perf_counter() + duration
    latencies: list[float] = []
    record = latencies.append
    chunks = 0

    async def loop() -> None:
        nonlocal chunks
        while perf_counter() < deadline:
            start = perf_counter()
            received = await op()  # not `chunks += await op()`: that reads `chunks` too early
            record(perf_counter() - start)
            chunks += received

    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return latencies, chunks


async def measure(args: argparse.Namespace) -> Result:
    client = create(args.client, args.url)
    replies: list[str] = []
    try:
        op = _operation(client, args.mode, replies)
        warm, _ = await _batch(op, args.concurrency, args.warmup)
        gc.collect()
        profiler = cProfile.Profile() if args.profile else None
        server_cpu0 = _proc_cpu_s(args.server_pid)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        latencies, chunks = await _batch(op, args.concurrency, args.duration)
        if profiler is not None:
            profiler.disable()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        server_cpu1 = _proc_cpu_s(args.server_pid)
        if profiler is not None:
            profiler.dump_stats(args.profile)
    finally:
        await client.aclose()
    n = len(latencies)
    latencies.sort()
    server_cpu = None if server_cpu0 is None or server_cpu1 is None else server_cpu1 - server_cpu0
    return Result(
        client=args.client,
        mode=args.mode,
        concurrency=args.concurrency,
        requests=n,
        chunks=chunks,
        cpu_s=cpu,
        wall_s=wall,
        cpu_us_per_request=cpu / n * 1e6,
        cpu_us_per_chunk=cpu / chunks * 1e6 if chunks else None,
        requests_per_s=n / wall,
        p50_ms=statistics.median(latencies) * 1e3,
        p99_ms=_percentile(latencies, 0.99) * 1e3,
        warmup_requests=len(warm),
        server_cpu_us_per_request=None if server_cpu is None else server_cpu / n * 1e6,
        server_cpu_share=None if server_cpu is None else server_cpu / wall,
        reply_chars=len(replies[0]) if replies else 0,
        peak_rss_mb=peak_rss_mb(),
    )


def peak_rss_mb() -> float:
    """The process's peak resident memory (``ru_maxrss``; KiB on Linux) in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--client", required=True, choices=(*CLIENTS, *EXTRA_CLIENTS))
    parser.add_argument("--url", required=True, help="server base URL, ending in /v1")
    parser.add_argument("--mode", required=True, choices=("chat", "stream", "embed"))
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=3.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds")
    parser.add_argument("--server-pid", type=int, help="read the server's CPU time from /proc")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the measured batch to FILE")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = asyncio.run(measure(args))
    sys.stdout.write(json.dumps(asdict(result)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
