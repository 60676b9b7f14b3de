"""Run the whole benchmark: one mock server process, one fresh worker process per measurement.

    .venv/bin/python benchmarks/run.py [--quick] [--out docs/performance.md]

Prints a table, writes ``benchmarks/results/latest.json`` and rewrites the results
section of ``docs/performance.md`` (a ``--quick`` run writes only what ``--out`` /
``--json`` name).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import re
import selectors
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clients import CLIENTS, is_installed
from report import (
    Scenario,
    headline,
    import_table,
    measured,
    results_table,
    scenario_name,
    summarize,
)

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
DEFAULT_JSON = BENCH / "results" / "latest.json"
DEFAULT_DOC = ROOT / "docs" / "performance.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
SCENARIOS: tuple[Scenario, ...] = (("chat", 1), ("chat", 128), ("stream", 1), ("stream", 128))
IMPORTS = ("llmfast", "llmfast, aiohttp", "aiohttp, msgspec", "openai", "litellm")
LIBRARIES = ("llmfast", "aiohttp", "msgspec", "openai", "httpx2", "httpx", "litellm")
_URL_LINE = re.compile(r"listening on (http://\S+)")
_ENV = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONDONTWRITEBYTECODE": "1"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the server ------------------------------------------------------------------------


@contextmanager
def mock_server(chunks: int) -> Iterator[tuple[str, int]]:
    """Start ``python -m llmfast.testing``; yield (base URL, pid); always stop it."""
    command = [sys.executable, "-m", "llmfast.testing", "--host", "127.0.0.1", "--port", "0"]
    command += ["--chunks", str(chunks)]
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=_ENV, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        try:
            yield _read_url(proc, stderr), proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def _read_url(proc: subprocess.Popen[str], stderr: Any, timeout: float = 30.0) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if selector.select(timeout):
            match = _URL_LINE.search(proc.stdout.readline())
            if match:
                return match.group(1)
    stderr.seek(0)
    detail = stderr.read().decode(errors="replace")[-2000:]
    raise RuntimeError(f"the mock server did not print its URL (exit {proc.poll()}):\n{detail}")


# -- measurements ----------------------------------------------------------------------


def run_worker(
    client: str, scenario: Scenario, url: str, pid: int, args: argparse.Namespace
) -> dict[str, Any]:
    """One measurement in a fresh process; a failure is recorded, not raised."""
    mode, concurrency = scenario
    command = [sys.executable, str(BENCH / "worker.py"), "--client", client, "--url", url]
    command += ["--mode", mode, "--concurrency", str(concurrency), "--server-pid", str(pid)]
    command += ["--duration", str(args.duration), "--warmup", str(args.warmup)]
    base: dict[str, Any] = {"client": client, "mode": mode, "concurrency": concurrency}
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
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def import_time_us(statement: str, repeats: int) -> float | None:
    """Median over ``repeats`` runs of the cumulative ``-X importtime`` of the named modules."""
    modules = [m.strip() for m in statement.split(",")]
    if not all(is_module(m) for m in modules):
        return None
    command = [sys.executable, "-X", "importtime", "-c", f"import {statement}"]
    subprocess.run(command, cwd=ROOT, env=_ENV, capture_output=True, check=True)  # warm caches
    samples = []
    for _ in range(repeats):
        done = subprocess.run(command, cwd=ROOT, env=_ENV, capture_output=True, text=True)
        total = 0
        for line in done.stderr.splitlines():
            _, _, rest = line.partition("import time:")
            fields = rest.split("|")
            # Top-level entries have exactly one space before the name; nested ones more.
            if (
                len(fields) == 3
                and fields[2].startswith(" ")
                and fields[2][1:2] != " "
                and fields[2].strip() in modules
            ):
                total += int(fields[1])
        samples.append(total)
    return statistics.median(samples)


def is_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


# -- the machine -----------------------------------------------------------------------


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    """The repository's commit, marked ``+dirty`` if llmfast/ has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "llmfast"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    except OSError:
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def machine() -> dict[str, Any]:
    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {lib: v for lib in LIBRARIES if (v := _version(lib)) is not None}
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "versions": versions,
        "commit": _git_commit(),
    }


# -- output ----------------------------------------------------------------------------


def render(data: dict[str, Any]) -> str:
    m, s = data["machine"], data["settings"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    lines = [
        f"Run on {m['date']} at commit {m['commit']}: `{s['command']}`",
        "",
        f"- Machine: {m['nproc']} CPUs available (`nproc`), {m['cpu_model']}, "
        f"Linux {m['kernel']}, {m['python']}; shared and noisy.",
        f"- Versions: {versions}.",
        f"- Each figure is the median of {s['repeats']} runs (clients interleaved); each run "
        f"is a fresh process: {s['warmup']} s warm-up, then {s['duration']} s measured. "
        f"Streams carry {s['chunks']} content chunks (plus role, finish and usage chunks).",
        "",
        *(f"- {line}" for line in headline(data["summary"])),
        "",
        results_table(data["summary"]),
        "",
        f"Import time (`python -X importtime`, cumulative, median of {s['import_repeats']} runs):",
        "",
        import_table(data["import_times_us"]),
    ]
    return "\n".join(lines)


_PAGE = """# Performance

How fast is llmfast's hot path? See [benchmarks/README.md](../benchmarks/README.md).

## Results

{start}
{end}
"""


def write_doc(path: Path, body: str) -> None:
    text = path.read_text() if path.exists() else _PAGE.format(start=START, end=END)
    if START not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n## Results\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{head}{START}\n{body}\n{END}{tail}")


# -- main ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark llmfast against other clients.")
    parser.add_argument("--quick", action="store_true", help="a short smoke run; writes nothing")
    parser.add_argument("--out", type=Path, help=f"Markdown page to update (default {DEFAULT_DOC})")
    parser.add_argument("--json", type=Path, help=f"results file (default {DEFAULT_JSON})")
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated")
    parser.add_argument("--repeats", type=int, help="runs per measurement (default 3; quick 1)")
    parser.add_argument("--duration", type=float, help="measured s per run (default 2.5)")
    parser.add_argument("--warmup", type=float, help="warm-up s per run (default 1)")
    parser.add_argument("--chunks", type=int, default=64, help="content chunks per stream")
    args = parser.parse_args(argv)
    quick = args.quick
    args.repeats = args.repeats or (1 if quick else 3)
    args.duration = args.duration or (0.5 if quick else 2.5)
    args.warmup = args.warmup or (0.2 if quick else 1.0)
    if not quick:
        args.out = args.out or DEFAULT_DOC
        args.json = args.json or DEFAULT_JSON
    return args


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through mock_server(), which stops the server


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    started = time.perf_counter()
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown = set(clients) - set(CLIENTS)
    if unknown:
        raise SystemExit(f"unknown clients: {', '.join(sorted(unknown))}")
    installed = [c for c in clients if is_installed(c)]
    import_repeats = 1 if args.quick else 5
    log(f"import times ({import_repeats} runs each)...")
    import_times = {stmt: import_time_us(stmt, import_repeats) for stmt in IMPORTS}

    runs: list[dict[str, Any]] = []
    plan = [(s, c) for s in SCENARIOS for c in installed if measured(c, s)]
    total = args.repeats * len(plan)
    with mock_server(args.chunks) as (url, pid):
        log(f"server at {url} (pid {pid})")
        for repeat in range(args.repeats):
            for scenario, client in plan:  # clients interleaved: A B C A B C ...
                result = run_worker(client, scenario, url, pid, args)
                result["repeat"] = repeat
                runs.append(result)
                figure = result.get("error") or (
                    f"{result['cpu_us_per_request']:,.0f} CPU µs/req, "
                    f"{result['requests_per_s']:,.0f} req/s"
                )
                log(f"[{len(runs)}/{total}] {scenario_name(scenario)} {client}: {figure}")
    runs += [
        {"client": c, "mode": mode, "concurrency": n, "error": "not installed"}
        for c in clients
        if c not in installed
        for mode, n in SCENARIOS
        if measured(c, (mode, n))
    ]
    command = "python benchmarks/run.py" + (" --quick" if args.quick else "")
    data: dict[str, Any] = {
        "machine": machine(),
        "settings": {
            "command": command,
            "repeats": args.repeats,
            "duration": args.duration,
            "warmup": args.warmup,
            "chunks": args.chunks,
            "import_repeats": import_repeats,
            "scenarios": [list(s) for s in SCENARIOS],
            "clients": clients,
        },
        "import_times_us": import_times,
        "summary": summarize(runs, SCENARIOS, clients),
        "runs": runs,
    }
    data["settings"]["elapsed_s"] = round(time.perf_counter() - started, 1)
    body = render(data)
    print(body)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=2) + "\n")
        log(f"wrote {args.json}")
    if args.out is not None:
        write_doc(args.out, body)
        log(f"wrote {args.out}")
    log(f"done in {data['settings']['elapsed_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
