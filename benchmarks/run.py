"""Run the whole benchmark: local servers in their own processes, one fresh worker
process per measurement.

    .venv/bin/python benchmarks/run.py [--quick] [--server auto|nginx|mock]

Prints a table, writes ``benchmarks/results/latest.json``, draws the plots into
``docs/images/`` and rewrites the results section of ``docs/performance.md`` (a
``--quick`` run writes only what ``--out`` / ``--json`` / ``--images`` name).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clients import CLIENTS, EXTRA_CLIENTS, SLOW, is_installed
from environment import import_time_us, machine
from pages import COMPARISON, render, write_doc
from report import Scenario, comparison_table, measured, summarize
from servers import Server, capture_replies, find_nginx, mock_server, nginx_server

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
DEFAULT_JSON = BENCH / "results" / "latest.json"
DEFAULT_DOC = ROOT / "docs" / "performance.md"
DEFAULT_IMAGES = ROOT / "docs" / "images"
DEFAULT_COMPARISON = ROOT / "docs" / "comparison.md"
IMPORTS = ("llmfast", "llmfast, aiohttp", "aiohttp, msgspec", "openai", "litellm")
_ENV = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONDONTWRITEBYTECODE": "1"}


def scenarios(latency_ms: int) -> tuple[Scenario, ...]:
    return (
        Scenario("chat", 1),
        Scenario("chat", 128),
        Scenario("chat", 512),
        Scenario("stream", 1),
        Scenario("stream", 128),
        Scenario("embed", 128),
        Scenario("chat", 512, latency_ms),
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_worker(
    client: str, scenario: Scenario, server: Server, args: argparse.Namespace
) -> dict[str, Any]:
    """One measurement in a fresh process; a failure is recorded, not raised."""
    mode, concurrency = scenario.mode, scenario.concurrency
    command = [sys.executable, str(BENCH / "worker.py"), "--client", client]
    command += ["--url", server.url_for(mode), "--mode", mode]
    command += ["--concurrency", str(concurrency), "--server-pid", str(server.pid)]
    command += ["--duration", str(args.duration), "--warmup", str(args.warmup)]
    base: dict[str, Any] = {"client": client, **scenario._asdict(), "server": server.kind}
    try:
        done = subprocess.run(
            command,
            cwd=ROOT,
            env=_ENV,
            capture_output=True,
            text=True,
            timeout=args.duration + args.warmup + 120,
        )
    except subprocess.TimeoutExpired:
        return {**base, "error": "timed out"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {**base, "error": f"failed: {last[:150]}"}
    result: dict[str, Any] = {**json.loads(lines[-1]), **base}
    return result


def measure_all(
    plan: Sequence[tuple[Scenario, str]], servers: dict[int, Server], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Every (scenario, client) ``args.repeats`` times, clients interleaved: A B C A B C."""
    runs: list[dict[str, Any]] = []
    total = sum(
        min(args.repeats, args.slow_repeats if c in SLOW else args.repeats) for _, c in plan
    )
    for repeat in range(args.repeats):
        for scenario, client in plan:
            if client in SLOW and repeat >= args.slow_repeats:
                continue
            result = run_worker(client, scenario, servers[scenario.latency_ms], args)
            result["repeat"] = repeat
            runs.append(result)
            figure = result.get("error") or (
                f"{result['cpu_us_per_request']:,.0f} CPU µs/req, "
                f"{result['requests_per_s']:,.0f} req/s, {result['peak_rss_mb']:,.0f} MiB"
            )
            log(f"[{len(runs)}/{total}] {scenario.name} {client}: {figure}")
    return runs


# -- main ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark llmfast against other clients.")
    parser.add_argument("--quick", action="store_true", help="a short smoke run; writes nothing")
    parser.add_argument(
        "--server",
        choices=("auto", "nginx", "mock"),
        default="auto",
        help="server of the scenarios without latency (auto: nginx if installed)",
    )
    parser.add_argument("--out", type=Path, help=f"Markdown page to update (default {DEFAULT_DOC})")
    parser.add_argument("--json", type=Path, help=f"results file (default {DEFAULT_JSON})")
    parser.add_argument("--images", type=Path, help=f"plots directory (default {DEFAULT_IMAGES})")
    parser.add_argument(
        "--comparison", type=Path, help=f"page with a summary table (default {DEFAULT_COMPARISON})"
    )
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated")
    parser.add_argument("--repeats", type=int, help="runs per measurement (default 3; quick 1)")
    parser.add_argument(
        "--slow-repeats",
        type=int,
        default=1,
        help=f"runs per measurement of {', '.join(sorted(SLOW))} (default 1)",
    )
    parser.add_argument("--duration", type=float, help="measured s per run (default 2; quick 0.5)")
    parser.add_argument("--warmup", type=float, help="warm-up s per run (default 0.5)")
    parser.add_argument("--chunks", type=int, default=64, help="content chunks per stream")
    parser.add_argument("--latency-ms", type=int, default=50, help="the latency scenario's delay")
    args = parser.parse_args(argv)
    if args.latency_ms <= 0:
        parser.error("--latency-ms must be > 0")
    quick = args.quick
    args.repeats = args.repeats or (1 if quick else 3)
    args.duration = args.duration or (0.5 if quick else 2.0)
    args.warmup = args.warmup or (0.2 if quick else 0.5)
    if not quick:
        args.out = args.out or DEFAULT_DOC
        args.json = args.json or DEFAULT_JSON
        args.images = args.images or DEFAULT_IMAGES
        args.comparison = args.comparison or DEFAULT_COMPARISON
    return args


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the servers' context managers


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    started = time.perf_counter()
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown = set(clients) - set(CLIENTS) - set(EXTRA_CLIENTS)
    if unknown:
        raise SystemExit(f"unknown clients: {', '.join(sorted(unknown))}")
    nginx = find_nginx() if args.server != "mock" else None
    if args.server == "nginx" and nginx is None:
        raise SystemExit("--server nginx: nginx is not installed (apt-get install nginx-light)")
    installed = [c for c in clients if is_installed(c)]
    import_repeats = 1 if args.quick else 5
    log(f"import times ({import_repeats} runs each)...")
    import_times = {stmt: import_time_us(stmt, import_repeats, _ENV) for stmt in IMPORTS}

    plan_scenarios = scenarios(args.latency_ms)
    plan = [(s, c) for s in plan_scenarios for c in installed if measured(c, s)]
    with contextlib.ExitStack() as stack:
        mock = stack.enter_context(mock_server(args.chunks, env=_ENV))
        fast = mock
        if nginx is not None:
            fast = stack.enter_context(nginx_server(capture_replies(mock.url), nginx))
        slow = stack.enter_context(mock_server(args.chunks, args.latency_ms / 1000, env=_ENV))
        servers = {0: fast, args.latency_ms: slow}
        for server in (fast, slow):
            log(f"{server.kind} server at {server.url} (pid {server.pid})")
        runs = measure_all(plan, servers, args)
        server_kinds = {"no latency": fast.kind, f"+{args.latency_ms} ms": slow.kind}
    runs += [
        {"client": c, **s._asdict(), "error": "not installed"}
        for c in clients
        if c not in installed
        for s in plan_scenarios
        if measured(c, s)
    ]
    command = "python benchmarks/run.py" + (" --quick" if args.quick else "")
    data: dict[str, Any] = {
        "machine": machine(nginx),
        "settings": {
            "command": command,
            "repeats": args.repeats,
            "slow_repeats": args.slow_repeats,
            "slow_clients": sorted(SLOW),
            "duration": args.duration,
            "warmup": args.warmup,
            "chunks": args.chunks,
            "latency_ms": args.latency_ms,
            "servers": server_kinds,
            "import_repeats": import_repeats,
            "scenarios": [list(s) for s in plan_scenarios],
            "clients": clients,
        },
        "import_times_us": import_times,
        "summary": summarize(runs, plan_scenarios, clients),
        "runs": runs,
    }
    images_link = None
    if args.images is not None and importlib.util.find_spec("matplotlib") is None:
        log("matplotlib is not installed (the bench extra): no plots")
        args.images = None
    if args.images is not None:
        from plots import write_plots

        for path in write_plots(data, args.images):
            log(f"wrote {path}")
        if args.out is not None:
            images_link = os.path.relpath(args.images.resolve(), args.out.resolve().parent)
    data["settings"]["elapsed_s"] = round(time.perf_counter() - started, 1)
    body = render(data, images_link)
    print(body)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=2) + "\n")
        log(f"wrote {args.json}")
    if args.out is not None:
        write_doc(args.out, body)
        log(f"wrote {args.out}")
    if args.comparison is not None:
        summary = comparison_table(data["summary"], import_times)
        date = data["machine"]["date"]
        link = f"Measured {date}; the full table: [Performance](performance.md#results)."
        write_doc(args.comparison, f"{summary}\n\n{link}", COMPARISON)
        log(f"wrote {args.comparison}")
    log(f"done in {data['settings']['elapsed_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
