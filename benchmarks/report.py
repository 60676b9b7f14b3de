"""Summaries of worker results: medians, ratios to the raw lower bound, Markdown tables."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from clients import STREAM_ONLY

__all__ = [
    "Scenario",
    "headline",
    "import_table",
    "measured",
    "results_table",
    "scenario_name",
    "summarize",
]

Scenario = tuple[str, int]  # (mode, concurrency)
Row = dict[str, Any]

_MEDIANS = (
    "cpu_us_per_request",
    "cpu_us_per_chunk",
    "requests_per_s",
    "p50_ms",
    "p99_ms",
    "server_cpu_share",
    "server_cpu_us_per_request",
)


def measured(client: str, scenario: Scenario) -> bool:
    """Whether ``client`` is measured in ``scenario`` (stream-only clients skip chat)."""
    return scenario[0] == "stream" or client not in STREAM_ONLY


def scenario_name(scenario: Scenario) -> str:
    mode, concurrency = scenario
    return f"{mode} c={concurrency}"


def _median(values: Iterable[Any]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(
    runs: Sequence[Row], scenarios: Sequence[Scenario], clients: Sequence[str]
) -> list[Row]:
    """One row per (scenario, client): the median of each figure over the repeats."""
    rows: list[Row] = []
    for mode, concurrency in scenarios:
        base: Row | None = None
        for client in clients:
            if not measured(client, (mode, concurrency)):
                continue
            mine = [
                r
                for r in runs
                if r["client"] == client and r["mode"] == mode and r["concurrency"] == concurrency
            ]
            ok = [r for r in mine if "error" not in r]
            row: Row = {"mode": mode, "concurrency": concurrency, "client": client}
            if not ok:
                row["error"] = mine[0]["error"] if mine else "not run"
                rows.append(row)
                continue
            for key in _MEDIANS:
                row[key] = _median(r[key] for r in ok)
            cpu = [r["cpu_us_per_request"] for r in ok]
            row["cpu_us_per_request_min"] = min(cpu)
            row["cpu_us_per_request_max"] = max(cpu)
            row["repeats"] = len(ok)
            row["requests_measured"] = sum(r["requests"] for r in ok)
            row["chunks_per_request"] = _median(
                r["chunks"] / r["requests"] for r in ok if r["mode"] == "stream"
            )
            if client == "raw":
                base = row
            if base is not None:
                per_request, per_chunk = row["cpu_us_per_request"], row["cpu_us_per_chunk"]
                row["cpu_per_request_vs_raw"] = per_request / base["cpu_us_per_request"]
                if per_chunk is not None and base["cpu_us_per_chunk"]:
                    row["cpu_per_chunk_vs_raw"] = per_chunk / base["cpu_us_per_chunk"]
            rows.append(row)
        bulk = _find(rows, mode, concurrency, "raw_bulk")
        if bulk is not None and bulk.get("cpu_us_per_chunk"):
            for row in rows:
                same = row["mode"] == mode and row["concurrency"] == concurrency
                if same and row.get("cpu_us_per_chunk") is not None:
                    per_chunk = row["cpu_us_per_chunk"] / bulk["cpu_us_per_chunk"]
                    row["cpu_per_chunk_vs_raw_bulk"] = per_chunk
    return rows


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def results_table(rows: Sequence[Row]) -> str:
    """The main Markdown table."""
    lines = [
        "| scenario | client | CPU µs/req | (min–max) | ÷ raw | CPU µs/chunk | ÷ raw "
        "| req/s | p50 ms | p99 ms | server CPU |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        name = scenario_name((row["mode"], row["concurrency"]))
        if "error" in row:
            lines.append(f"| {name} | {row['client']} | {row['error']} |" + " |" * 9)
            continue
        spread = f"{row['cpu_us_per_request_min']:,.0f}–{row['cpu_us_per_request_max']:,.0f}"
        share = row["server_cpu_share"]
        lines.append(
            f"| {name} | {row['client']} | {_num(row['cpu_us_per_request'])} | {spread} "
            f"| {_ratio(row.get('cpu_per_request_vs_raw'))} "
            f"| {_num(row['cpu_us_per_chunk'], 1)} | {_ratio(row.get('cpu_per_chunk_vs_raw'))} "
            f"| {_num(row['requests_per_s'])} | {_num(row['p50_ms'], 2)} "
            f"| {_num(row['p99_ms'], 2)} | {'–' if share is None else f'{share:.0%}'} |"
        )
    return "\n".join(lines)


def import_table(import_times: dict[str, float | None]) -> str:
    """Import times (µs, median) as a Markdown table."""
    lines = ["| statement | import time (ms) |", "|---|--:|"]
    for statement, micros in import_times.items():
        value = "not installed" if micros is None else f"{micros / 1000:,.1f}"
        lines.append(f"| `import {statement}` | {value} |")
    return "\n".join(lines)


def _find(rows: Sequence[Row], mode: str, concurrency: int, client: str) -> Row | None:
    for row in rows:
        if (row["mode"], row["concurrency"], row["client"]) == (mode, concurrency, client):
            return row
    return None


def headline(rows: Sequence[Row]) -> list[str]:
    """The key ratios to the raw lower bound, one sentence each."""
    out: list[str] = []
    for mode, key, what in (
        ("chat", "cpu_per_request_vs_raw", "CPU per request, non-streaming"),
        ("stream", "cpu_per_chunk_vs_raw", "CPU per chunk, streaming"),
        ("stream", "cpu_per_chunk_vs_raw_bulk", "CPU per chunk, streaming"),
    ):
        versus = "raw_bulk" if key.endswith("raw_bulk") else "raw"
        for concurrency in sorted({r["concurrency"] for r in rows}, reverse=True):
            parts = []
            for client in ("raw_bulk", "llmfast", "openai", "litellm"):
                if client == versus:
                    continue
                row = _find(rows, mode, concurrency, client)
                if row is not None and row.get(key) is not None:
                    parts.append(f"{client} **{row[key]:.2f}×**")
            if parts:
                out.append(f"{what}, c={concurrency}, ÷ {versus}: " + ", ".join(parts))
    return out
