"""PNG plots of a benchmark run (matplotlib, the ``bench`` extra).

    python benchmarks/plots.py [benchmarks/results/latest.json] [docs/images]

``run.py`` calls ``write_plots`` after a full run; this command redraws them from a
results file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: write files only

import matplotlib.pyplot as plt
from clients import CLIENTS
from matplotlib.axes import Axes
from report import Row, Scenario, find

__all__ = ["PLOTS", "write_plots"]

ROOT = Path(__file__).resolve().parent.parent
COLORS = {
    "raw": "#7f7f7f",
    "raw_bulk": "#bcbcbc",
    "llmfast": "#1f77b4",
    "openai": "#ff7f0e",
    "openai_aiohttp": "#ffbb78",
    "litellm": "#d62728",
}

#: The files written, in the order ``docs/performance.md`` shows them.
PLOTS = ("cpu_per_request.png", "throughput.png", "latency.png", "imports_memory.png")


def _scenarios(rows: Sequence[Row]) -> list[Scenario]:
    seen: dict[Scenario, None] = {}
    for row in rows:
        seen.setdefault(Scenario.of(row), None)
    return list(seen)


def _clients(rows: Sequence[Row]) -> list[str]:
    """The clients with figures, in the benchmark's order (raw_bulk next to raw)."""
    present = {r["client"] for r in rows if "error" not in r}
    return [c for c in CLIENTS if c in present]


def _grouped_bars(
    ax: Axes, rows: Sequence[Row], scenarios: Sequence[Scenario], key: str, log: bool
) -> None:
    """One group of bars per scenario, one bar per client measured in it."""
    width = 0.8 / max(1, len(_clients(rows)))
    labelled: set[str] = set()
    for x, scenario in enumerate(scenarios):
        found = [(c, find(rows, scenario, c)) for c in _clients(rows)]
        bars = [(c, row[key]) for c, row in found if row is not None and row.get(key) is not None]
        for i, (client, value) in enumerate(bars):
            offset = (i - (len(bars) - 1) / 2) * width
            label = None if client in labelled else client
            labelled.add(client)
            ax.bar(x + offset, value, width, label=label, color=COLORS.get(client))
    ax.set_xticks(range(len(scenarios)), [s.name for s in scenarios], rotation=20, ha="right")
    if log:
        ax.set_yscale("log")
    ax.grid(axis="y", which="major", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: CLIENTS.index(labels[i]))
    ax.figure.legend(
        [handles[i] for i in order],
        [labels[i] for i in order],
        loc="outside lower center",
        ncols=len(order),
        fontsize="small",
        frameon=False,
    )


def _cpu(data: dict[str, Any], path: Path) -> None:
    rows = data["summary"]
    fig, ax = plt.subplots(figsize=(10, 4.8), layout="constrained")
    _grouped_bars(ax, rows, _scenarios(rows), "cpu_us_per_request", log=True)
    ax.set_ylabel("client CPU µs per request (log scale; lower is better)")
    fig.suptitle("What each client costs per call")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _throughput(data: dict[str, Any], path: Path) -> None:
    rows = data["summary"]
    fig, ax = plt.subplots(figsize=(10, 4.8), layout="constrained")
    _grouped_bars(ax, rows, _scenarios(rows), "requests_per_s", log=True)
    ax.set_ylabel("requests/s (log scale; higher is better)")
    fig.suptitle("Throughput: client and server share 2 CPUs")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _latency(data: dict[str, Any], path: Path) -> None:
    rows = data["summary"]
    chosen = [s for s in _scenarios(rows) if s.concurrency == max(r["concurrency"] for r in rows)]
    fig, axes = plt.subplots(1, len(chosen), figsize=(10, 4.2), layout="constrained", squeeze=False)
    for ax, scenario in zip(axes[0], chosen, strict=True):
        clients = [c for c in _clients(rows) if find(rows, scenario, c) is not None]
        found = [find(rows, scenario, c) or {} for c in clients]
        p50 = [r.get("p50_ms") or 0.0 for r in found]
        p99 = [r.get("p99_ms") or 0.0 for r in found]
        colors = [COLORS.get(c, "#333333") for c in clients]
        ax.bar(clients, p99, color=colors, alpha=0.35, label="p99")
        ax.bar(clients, p50, color=colors, label="p50")
        ax.set_yscale("log")
        ax.set_title(scenario.name)
        ax.set_ylabel("latency of one call, ms (log; lower is better)")
        ax.tick_params(axis="x", rotation=20)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle("Latency at the highest concurrency: p50 (solid) and p99 (light)")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _imports_memory(data: dict[str, Any], path: Path) -> None:
    rows = data["summary"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    imports = {k: v / 1000 for k, v in data["import_times_us"].items() if v is not None}
    left.barh([f"import {k}" for k in imports], list(imports.values()), color="#1f77b4")
    left.invert_yaxis()
    left.set_xlabel("import time, ms (lower is better)")
    left.grid(axis="x", alpha=0.3)
    scenario = max(_scenarios(rows), key=lambda s: (s.concurrency, -s.latency_ms))
    clients = [c for c in _clients(rows) if find(rows, scenario, c) is not None]
    memory = [(find(rows, scenario, c) or {}).get("peak_rss_mb") or 0.0 for c in clients]
    right.barh(clients, memory, color=[COLORS.get(c, "#333333") for c in clients])
    right.invert_yaxis()
    right.set_xlabel(f"peak memory of the worker, MiB ({scenario.name})")
    right.grid(axis="x", alpha=0.3)
    fig.suptitle("Start-up and memory")
    fig.savefig(path, dpi=90)
    plt.close(fig)


_DRAW: dict[str, Callable[[dict[str, Any], Path], None]] = dict(
    zip(PLOTS, (_cpu, _throughput, _latency, _imports_memory), strict=True)
)


def write_plots(data: dict[str, Any], directory: Path) -> list[Path]:
    """Draw every plot of ``data`` (a results file's contents) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in _DRAW.items():
        path = directory / name
        draw(data, path)
        written.append(path)
    return written


def main(argv: Sequence[str]) -> int:
    source = Path(argv[0]) if argv else ROOT / "benchmarks" / "results" / "latest.json"
    target = Path(argv[1]) if len(argv) > 1 else ROOT / "docs" / "images"
    for path in write_plots(json.loads(source.read_text()), target):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
