"""llmfast's CPU per call against the floor, in one run: streams against ``raw_bulk``,
non-streaming chat against ``raw``, at concurrency 16 and 128.

    .venv/bin/python benchmarks/stream_floor.py [--repeats 5] [--chunks 97]

One nginx (serving the mock server's replies, so every client reads the same bytes) and
one fresh ``worker.py`` process per measurement; clients interleaved within each repeat
(raw_bulk, llmfast, raw_bulk, ... then raw, llmfast, ...), so machine noise hits both
sides alike. Prints, per scenario, the median CPU µs per chunk (streams) or per request
(chat) of each client, the ratio of the medians, the median of the per-repeat ratios
(each llmfast run against the floor run just before it) and the ratio of the best runs.
``--chunks 97`` makes a 100-chunk stream (role, 97 content chunks, finish, usage).

``--callgrind`` counts instructions instead (``callgrind.py``: valgrind, a short and a
long fixed number of calls per client, the difference per call). Counts are the same on a
quiet and a loaded machine, so this is the figure to trust where wall-clock CPU is noisy;
it prints instructions per chunk (streams) or per request (chat) and their ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
from typing import Any

from callgrind import find_valgrind, instructions_per_call
from report import Scenario
from run import _ENV, run_worker
from servers import capture_replies, find_nginx, mock_server, nginx_server

PAIRS = {"stream": ("raw_bulk", "llmfast"), "chat": ("raw", "llmfast")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--duration", type=float, default=1.5)
    parser.add_argument("--warmup", type=float, default=0.4)
    parser.add_argument("--chunks", type=int, default=97)
    parser.add_argument("--concurrency", default="16,128", help="comma-separated")
    parser.add_argument("--modes", default="stream,chat", help="comma-separated")
    parser.add_argument("--callgrind", action="store_true", help="count instructions instead")
    parser.add_argument("--calls", default="32,160", help="callgrind: short,long call counts")
    args = parser.parse_args(argv)
    if find_nginx() is None:
        raise SystemExit("nginx is not installed (Debian: apt-get install nginx-light)")
    levels = [int(c) for c in args.concurrency.split(",")]
    modes = [m for m in args.modes.split(",") if m]
    scenarios = [Scenario(mode, c) for mode in modes for c in levels]
    if args.callgrind:
        return _callgrind(scenarios, args)
    figures: dict[tuple[Scenario, str], list[float]] = {}
    with contextlib.ExitStack() as stack:
        mock = stack.enter_context(mock_server(args.chunks, env=_ENV))
        server = stack.enter_context(nginx_server(capture_replies(mock.url)))
        for repeat in range(args.repeats):
            for scenario in scenarios:
                for client in PAIRS[scenario.mode]:
                    result: dict[str, Any] = run_worker(client, scenario, server, args)
                    if "error" in result:
                        raise SystemExit(f"{client} {scenario}: {result['error']}")
                    key = "cpu_us_per_chunk" if scenario.mode == "stream" else "cpu_us_per_request"
                    figures.setdefault((scenario, client), []).append(result[key])
                    print(
                        f"[{repeat + 1}/{args.repeats}] {scenario.mode} c={scenario.concurrency}"
                        f" {client}: {result[key]:.2f}",
                        file=sys.stderr,
                        flush=True,
                    )
    print(f"\n{args.repeats} interleaved repeats, CPU µs ({args.chunks + 3}-chunk streams)")
    print(
        "| scenario | floor | floor µs (median) | llmfast µs (median) | ratio of medians "
        "| median of paired ratios | ratio of minima |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for scenario in scenarios:
        floor, ours = PAIRS[scenario.mode]
        bases, mines = figures[scenario, floor], figures[scenario, ours]
        base, mine = statistics.median(bases), statistics.median(mines)
        paired = statistics.median(m / b for m, b in zip(mines, bases, strict=True))
        unit = "/chunk" if scenario.mode == "stream" else "/req"
        print(
            f"| {scenario.mode} c={scenario.concurrency} | {floor} | {base:.2f}{unit} "
            f"| {mine:.2f}{unit} | {mine / base:.2f}x | {paired:.2f}x "
            f"| {min(mines) / min(bases):.2f}x |"
        )
    return 0


def _callgrind(scenarios: list[Scenario], args: argparse.Namespace) -> int:
    """Instructions per chunk/request of each pair, and their ratio (no repeats needed)."""
    if find_valgrind() is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    short, long = (int(n) for n in args.calls.split(","))
    chunks = args.chunks + 3
    print(f"\ncallgrind instructions ({chunks}-chunk streams; calls {short} vs {long})")
    print("| scenario | floor | floor Ir | llmfast Ir | ratio |")
    print("|---|---|---:|---:|---:|")
    with contextlib.ExitStack() as stack:
        mock = stack.enter_context(mock_server(args.chunks, env=_ENV))
        server = stack.enter_context(nginx_server(capture_replies(mock.url)))
        for scenario in scenarios:
            per = chunks if scenario.mode == "stream" else 1
            counts = [
                instructions_per_call(
                    client,
                    server.url_for(scenario.mode),
                    scenario.mode,
                    scenario.concurrency,
                    short,
                    long,
                    env=_ENV,
                )
                / per
                for client in PAIRS[scenario.mode]
            ]
            floor, ours = counts
            unit = "/chunk" if scenario.mode == "stream" else "/req"
            print(
                f"| {scenario.mode} c={scenario.concurrency} | {PAIRS[scenario.mode][0]} "
                f"| {floor:,.0f}{unit} | {ours:,.0f}{unit} | {ours / floor:.3f}x |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
