"""What the ``llmfast.openai`` facade costs: CPU per call of the raw aiohttp + msgspec
floor, llmfast's native ``client.chat`` / ``client.stream``, the facade
(``AsyncOpenAI().chat.completions.create``) and the official ``openai`` SDK, in one run.

    .venv/bin/python benchmarks/facade_overhead.py [--repeats 3] [--concurrency 16]

One server (nginx serving the mock server's replies when nginx is installed, else the
mock server) and one fresh ``worker.py``-style process per measurement; the clients are
interleaved within each repeat (raw, llmfast, facade, openai, raw, ...) so machine noise
hits all alike. Prints the median CPU µs per request (chat) or per chunk (stream) of
each, and the ratios of the medians: facade / native (goal ≤ 1.2) and openai / facade
(goal ≥ 5). The facade's adapter reads each chunk the way SDK code does
(``chunk.choices[0].delta.content``), as the SDK's adapter does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import clients
import worker
from client_openai import OpenAIClient
from clients import API_KEY
from servers import capture_replies, find_nginx, mock_server, nginx_server

import llmfast
from llmfast.openai import AsyncOpenAI

BENCH = Path(__file__).resolve().parent
_ENV = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # as run.py starts its servers
CLIENTS = ("raw", "llmfast", "facade", "openai")
STREAM_FLOOR = "raw_bulk"


class FacadeClient(OpenAIClient):
    """``llmfast.openai.AsyncOpenAI``, used exactly as ``client_openai.py`` uses the SDK:
    by the very same adapter code, with the facade in the SDK client's place."""

    def __init__(self, base_url: str) -> None:
        self._client = AsyncOpenAI(  # type: ignore[assignment]  # the SDK's stand-in
            base_url=base_url, api_key=API_KEY, pool=llmfast.PoolConfig(limit=1000)
        )


def _worker(argv: list[str]) -> int:
    """One measurement in this (fresh) process, printed as one JSON line."""
    args = worker.parse_args([a if a != "facade" else "llmfast" for a in argv])
    name = argv[argv.index("--client") + 1]

    def create(client: str, base_url: str) -> clients.BenchClient:
        return FacadeClient(base_url) if name == "facade" else clients.create(client, base_url)

    setattr(worker, "create", create)  # noqa: B010 - the measuring loop is worker.py's, unchanged
    result = asyncio.run(worker.measure(args))
    result.client = name
    sys.stdout.write(json.dumps(asdict(result)) + "\n")
    return 0


def _measure(client: str, mode: str, url: str, args: argparse.Namespace) -> float:
    command = [sys.executable, __file__, "--worker", "--client", client, "--url", url]
    command += ["--mode", mode, "--concurrency", str(args.concurrency)]
    command += ["--duration", str(args.duration), "--warmup", str(args.warmup)]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=args.duration + args.warmup + 120
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{client} {mode} failed: {done.stderr.strip()[-500:]}")
    result = json.loads(lines[-1])
    key = "cpu_us_per_chunk" if mode == "stream" else "cpu_us_per_request"
    return float(result[key])


@contextlib.contextmanager
def _server(kind: str, chunks: int) -> Iterator[Any]:
    with contextlib.ExitStack() as stack:
        mock = stack.enter_context(mock_server(chunks, env=_ENV))
        if kind == "mock" or (kind == "auto" and find_nginx() is None):
            yield mock
        else:
            yield stack.enter_context(nginx_server(capture_replies(mock.url)))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        return _worker(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=float, default=1.5)
    parser.add_argument("--warmup", type=float, default=0.4)
    parser.add_argument("--chunks", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--modes", default="chat,stream", help="comma-separated")
    parser.add_argument("--server", choices=("auto", "nginx", "mock"), default="auto")
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    figures: dict[tuple[str, str], list[float]] = {}
    with _server(args.server, args.chunks) as server:
        for repeat in range(args.repeats):
            for mode in modes:
                for client in CLIENTS:
                    who = STREAM_FLOOR if client == "raw" and mode == "stream" else client
                    value = _measure(who, mode, server.url_for(mode), args)
                    figures.setdefault((mode, client), []).append(value)
                    print(
                        f"[{repeat + 1}/{args.repeats}] {mode} {who}: {value:.2f}", file=sys.stderr
                    )
    print(
        f"\n{args.repeats} interleaved repeats, c={args.concurrency}, {server.kind} server, "
        f"median CPU µs per request (chat) / per chunk ({args.chunks + 3}-chunk streams)\n"
    )
    print("| mode | floor | llmfast | facade | openai | facade / llmfast | openai / facade |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for mode in modes:
        floor, native, facade, sdk = (statistics.median(figures[mode, c]) for c in CLIENTS)
        print(
            f"| {mode} | {floor:.1f} | {native:.1f} | {facade:.1f} | {sdk:.1f} "
            f"| {facade / native:.2f}x | {sdk / facade:.1f}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
