"""The Markdown the benchmark writes: the results section and the pages' marked parts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from report import headline, import_table, results_table

__all__ = ["COMPARISON", "RESULTS", "render", "write_doc"]

RESULTS = "<!-- results:start -->", "<!-- results:end -->"
COMPARISON = "<!-- comparison:start -->", "<!-- comparison:end -->"


def _server_line(kind: str, latency_ms: int) -> str:
    if kind == "nginx":
        return (
            "nginx (`benchmarks/nginx/nginx.conf`, one process) serving fixed replies "
            "captured from the llmfast mock server"
        )
    latency = f", `--latency {latency_ms / 1000}`" if latency_ms else ""
    return f"the llmfast mock server (`python -m llmfast.testing`, one process{latency})"


def render(data: dict[str, Any], images: str | None) -> str:
    m, s = data["machine"], data["settings"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    servers = "; ".join(
        f"{name}: {_server_line(kind, s['latency_ms'] if name.endswith('ms') else 0)}"
        for name, kind in s["servers"].items()
    )
    slow = ", ".join(sorted(set(s["clients"]) & set(s["slow_clients"])))
    repeats = f"the median of {s['repeats']} runs (clients interleaved)"
    if slow and s["slow_repeats"] < s["repeats"]:
        repeats += f"; {slow}: {s['slow_repeats']} run{'s' if s['slow_repeats'] > 1 else ''}"
    lines = [
        f"Run on {m['date']} at commit {m['commit']}: `{s['command']}` "
        f"({s['elapsed_s'] / 60:.1f} minutes)",
        "",
        f"- Machine: {m['nproc']} CPUs available (`nproc`), {m['cpu_model']}, "
        f"Linux {m['kernel']}, {m['python']}; shared and noisy.",
        f"- Versions: {versions}.",
        f"- Servers, on 127.0.0.1 in their own processes: {servers}.",
        f"- Each figure is {repeats}; each run is a fresh process: {s['warmup']} s warm-up, "
        f"then {s['duration']} s measured. Streams carry {s['chunks']} content chunks (plus "
        f"role, finish and usage chunks); an embeddings call sends 8 texts and receives "
        f"8 × 256 floats.",
        "",
        *(f"- {line}" for line in headline(data["summary"])),
        "",
        results_table(data["summary"]),
        "",
        f"Import time (`python -X importtime`, cumulative, median of {s['import_repeats']} runs):",
        "",
        import_table(data["import_times_us"]),
    ]
    if images is not None:
        from plots import PLOTS

        lines += ["", *(f"![{name[:-4].replace('_', ' ')}]({images}/{name})\n" for name in PLOTS)]
    return "\n".join(lines).rstrip("\n")


def write_doc(path: Path, body: str, markers: tuple[str, str] = RESULTS) -> None:
    """Replace what lies between ``markers`` in ``path`` (appended if missing) by ``body``."""
    start, end = markers
    text = path.read_text() if path.exists() else ""
    if start not in text or end not in text:
        text = text.rstrip("\n") + f"\n\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{head}{start}\n{body}\n{end}{tail}")
