"""Summaries of worker results: medians, ratios to the lower bound, Markdown tables."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from clients import STREAM_ONLY

__all__ = [
    "Scenario",
    "comparison_table",
    "find",
    "headline",
    "import_table",
    "measured",
    "results_table",
    "summarize",
]

Row = dict[str, Any]


class Scenario(NamedTuple):
    """One measured situation: the call, the calls in flight, the server's added latency."""

    mode: str  # "chat", "stream" or "embed"
    concurrency: int
    latency_ms: int = 0

    @property
    def name(self) -> str:
        latency = f" +{self.latency_ms} ms" if self.latency_ms else ""
        return f"{self.mode} c={self.concurrency}{latency}"

    @classmethod
    def of(cls, row: Row) -> Scenario:
        return cls(row["mode"], row["concurrency"], row.get("latency_ms", 0))


_MEDIANS = (
    "cpu_us_per_request",
    "cpu_us_per_chunk",
    "requests_per_s",
    "p50_ms",
    "p99_ms",
    "peak_rss_mb",
    "server_cpu_share",
    "server_cpu_us_per_request",
)


def measured(client: str, scenario: Scenario) -> bool:
    """Whether ``client`` is measured in ``scenario`` (stream-only clients skip the rest)."""
    return scenario.mode == "stream" or client not in STREAM_ONLY


def _median(values: Iterable[Any]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.median(present) if present else None


def _summary(client: str, scenario: Scenario, mine: Sequence[Row]) -> Row:
    row: Row = {"client": client, **scenario._asdict()}
    ok = [r for r in mine if "error" not in r]
    if not ok:
        row["error"] = mine[0]["error"] if mine else "not run"
        return row
    for key in _MEDIANS:
        row[key] = _median(r.get(key) for r in ok)
    cpu = [r["cpu_us_per_request"] for r in ok]
    row["cpu_us_per_request_min"] = min(cpu)
    row["cpu_us_per_request_max"] = max(cpu)
    row["repeats"] = len(ok)
    row["requests_measured"] = sum(r["requests"] for r in ok)
    if scenario.mode == "stream":
        row["chunks_per_request"] = _median(r["chunks"] / r["requests"] for r in ok)
    return row


def _ratio_to(rows: Sequence[Row], base: Row | None, key: str, name: str) -> None:
    if base is None or not base.get(key):
        return
    for row in rows:
        if row.get(key) is not None:
            row[name] = row[key] / base[key]


def summarize(
    runs: Sequence[Row], scenarios: Sequence[Scenario], clients: Sequence[str]
) -> list[Row]:
    """One row per (scenario, client): the median of each figure over the repeats."""
    out: list[Row] = []
    for scenario in scenarios:
        rows = [
            _summary(
                client,
                scenario,
                [r for r in runs if r["client"] == client and Scenario.of(r) == scenario],
            )
            for client in clients
            if measured(client, scenario)
        ]
        raw = next((r for r in rows if r["client"] == "raw"), None)
        bulk = next((r for r in rows if r["client"] == "raw_bulk"), None)
        _ratio_to(rows, raw, "cpu_us_per_request", "cpu_per_request_vs_raw")
        _ratio_to(rows, raw, "cpu_us_per_chunk", "cpu_per_chunk_vs_raw")
        _ratio_to(rows, bulk, "cpu_us_per_chunk", "cpu_per_chunk_vs_raw_bulk")
        _ratio_to(rows, raw, "requests_per_s", "requests_per_s_vs_raw")
        out += rows
    return out


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


_HEADER = (
    "| scenario | client | CPU µs/req | (min–max) | ÷ raw | CPU µs/chunk | ÷ raw_bulk "
    "| req/s | p50 ms | p99 ms | peak MB | server CPU |\n"
    "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
)


def results_table(rows: Sequence[Row]) -> str:
    """The main Markdown table."""
    lines = [_HEADER]
    for row in rows:
        name = Scenario.of(row).name
        if "error" in row:
            lines.append(f"| {name} | {row['client']} | {row['error']} |" + " |" * 10)
            continue
        spread = f"{row['cpu_us_per_request_min']:,.0f}–{row['cpu_us_per_request_max']:,.0f}"
        share = row["server_cpu_share"]
        lines.append(
            f"| {name} | {row['client']} | {_num(row['cpu_us_per_request'])} | {spread} "
            f"| {_ratio(row.get('cpu_per_request_vs_raw'))} "
            f"| {_num(row['cpu_us_per_chunk'], 1)} "
            f"| {_ratio(row.get('cpu_per_chunk_vs_raw_bulk'))} "
            f"| {_num(row['requests_per_s'])} | {_num(row['p50_ms'], 2)} "
            f"| {_num(row['p99_ms'], 2)} | {_num(row['peak_rss_mb'])} "
            f"| {'–' if share is None else f'{share:.0%}'} |"
        )
    return "\n".join(lines)


def import_table(import_times: dict[str, float | None]) -> str:
    """Import times (µs, median) as a Markdown table."""
    lines = ["| statement | import time (ms) |", "|---|--:|"]
    for statement, micros in import_times.items():
        value = "not installed" if micros is None else f"{micros / 1000:,.1f}"
        lines.append(f"| `import {statement}` | {value} |")
    return "\n".join(lines)


def find(rows: Sequence[Row], scenario: Scenario, client: str) -> Row | None:
    """The summary row of ``client`` in ``scenario``, if there is one."""
    for row in rows:
        if row["client"] == client and Scenario.of(row) == scenario:
            return row
    return None


_PEERS = ("raw_bulk", "llmfast", "openai", "openai_aiohttp", "litellm")
_HEADLINES = (
    ("chat", "cpu_per_request_vs_raw", "CPU per request, non-streaming", "raw"),
    ("embed", "cpu_per_request_vs_raw", "CPU per request, embeddings", "raw"),
    ("stream", "cpu_per_chunk_vs_raw", "CPU per chunk, streaming", "raw"),
    ("stream", "cpu_per_chunk_vs_raw_bulk", "CPU per chunk, streaming", "raw_bulk"),
)


def headline(rows: Sequence[Row]) -> list[str]:
    """The key ratios to the lower bound, one sentence per scenario."""
    out: list[str] = []
    scenarios = sorted(
        {Scenario.of(r) for r in rows}, key=lambda s: (-s.latency_ms, -s.concurrency)
    )
    for mode, key, what, versus in _HEADLINES:
        for scenario in (s for s in scenarios if s.mode == mode):
            parts = [
                f"{client} **{row[key]:.2f}×**"
                for client in _PEERS
                if client != versus
                and (row := find(rows, scenario, client)) is not None
                and row.get(key) is not None
            ]
            if parts:
                where = scenario.name.removeprefix(f"{mode} ")
                out.append(f"{what}, {where}, ÷ {versus}: " + ", ".join(parts))
    for scenario in (s for s in scenarios if s.latency_ms):
        parts = [
            f"{client} **{row['requests_per_s_vs_raw']:.2f}×**"
            for client in _PEERS
            if (row := find(rows, scenario, client)) is not None
            and row.get("requests_per_s_vs_raw") is not None
        ]
        if parts:
            out.append(f"Requests/s, {scenario.name}, ÷ raw: " + ", ".join(parts))
    return out


_COMPARED = ("llmfast", "openai", "openai_aiohttp", "litellm")
_COMPARISON_ROWS = (
    (Scenario("chat", 1), "cpu_per_request_vs_raw", "CPU per call ÷ raw"),
    (Scenario("chat", 128), "cpu_per_request_vs_raw", "CPU per call ÷ raw"),
    (Scenario("chat", 512), "cpu_per_request_vs_raw", "CPU per call ÷ raw"),
    (Scenario("stream", 128), "cpu_per_chunk_vs_raw_bulk", "CPU per chunk ÷ raw_bulk"),
    (Scenario("embed", 128), "cpu_per_request_vs_raw", "CPU per call ÷ raw"),
)


def comparison_table(rows: Sequence[Row], import_times: dict[str, float | None]) -> str:
    """The key figures per client, for the comparison page."""
    clients = [c for c in _COMPARED if any(r["client"] == c and "error" not in r for r in rows)]
    lines = [
        "| figure | lower bound | " + " | ".join(clients) + " |",
        "|---|--:|" + "--:|" * len(clients),
    ]

    def add(label: str, bound: str, cells: list[str]) -> None:
        if any(cell != "–" for cell in cells):
            lines.append(f"| {label} | {bound} | " + " | ".join(cells) + " |")

    latency = sorted({s for s in map(Scenario.of, rows) if s.latency_ms})
    for scenario, key, what in _COMPARISON_ROWS + tuple(
        (s, "cpu_per_request_vs_raw", "CPU per call ÷ raw") for s in latency
    ):
        cells = [_ratio((find(rows, scenario, c) or {}).get(key)) for c in clients]
        add(f"{what}, {scenario.name}", "1.00×", cells)
    for scenario in latency:
        for key, what, digits in (("requests_per_s", "requests/s", 0), ("p99_ms", "p99 ms", 0)):
            raw = (find(rows, scenario, "raw") or {}).get(key)
            cells = [_num((find(rows, scenario, c) or {}).get(key), digits) for c in clients]
            add(f"{what}, {scenario.name}", _num(raw, digits), cells)
    top = max(map(Scenario.of, rows), key=lambda s: (s.concurrency, -s.latency_ms))
    raw_memory = (find(rows, top, "raw") or {}).get("peak_rss_mb")
    cells = [_num((find(rows, top, c) or {}).get("peak_rss_mb")) for c in clients]
    add(f"peak memory MiB, {top.name}", _num(raw_memory), cells)
    statement = {"llmfast": "llmfast, aiohttp", "openai_aiohttp": "openai"}
    cells = [_num(_ms(import_times.get(statement.get(c, c)))) for c in clients]
    add("import ms (llmfast: with aiohttp)", _num(_ms(import_times.get("aiohttp, msgspec"))), cells)
    return "\n".join(lines)


def _ms(micros: float | None) -> float | None:
    return None if micros is None else micros / 1000
