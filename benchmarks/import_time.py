"""``import llmfast`` against ``import aiohttp``: ``python benchmarks/import_time.py [N]``.

Each round runs ``python -X importtime -c "import X"`` once per statement, in a fresh
interpreter, alternating the statements so that load on the machine weighs on both
alike. Two figures per statement, each the median over N rounds (default 15):

- *importtime*: the module's cumulative ``-X importtime`` entry (everything it
  imports included, interpreter start-up not). Wall-clock time: on a busy machine it
  also counts the time the process waited for a CPU.
- *CPU*: the interpreter's CPU time (user + system, from ``getrusage``) minus that
  of ``python -c pass`` in the same round: what the import costs, waits left out.

Byte code is cached (in a temporary ``PYTHONPYCACHEPREFIX``), as after a pip install.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["cumulative_us", "measure"]

ROOT = Path(__file__).resolve().parent.parent
STATEMENTS = ("aiohttp", "llmfast")


def cumulative_us(stderr: str, module: str) -> int:
    """``module``'s cumulative time in ``-X importtime`` output (interpreter start-up,
    which every statement pays alike, left out)."""
    total = 0
    for line in stderr.splitlines():
        _, _, rest = line.partition("import time:")
        fields = rest.split("|")
        # Top-level entries have exactly one space before the name; nested ones more.
        if len(fields) == 3 and fields[2][1:2] != " " and fields[2].strip() == module:
            total += int(fields[1])
    return total


def bytecode_env(cache: str) -> Mapping[str, str]:
    """The environment with byte-code caching on, in ``cache``, as after a pip install
    (with ``PYTHONDONTWRITEBYTECODE`` set, an editable llmfast would be compiled from
    source on every import, while its dependencies load their cached byte code)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache
    return env


def _run(code: str, env: Mapping[str, str], importtime: bool) -> tuple[str, float]:
    """Run ``python -c code``; its stderr and the CPU seconds it used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    flags = ["-X", "importtime"] if importtime else []
    done = subprocess.run(
        [sys.executable, *flags, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done.stderr, cpu


def measure(statements: Sequence[str], rounds: int) -> dict[str, dict[str, list[float]]]:
    """Per statement, one ``importtime`` and one ``cpu`` sample (µs) per round, the
    statements interleaved."""
    samples: dict[str, dict[str, list[float]]] = {
        s: {"importtime": [], "cpu": []} for s in statements
    }
    with tempfile.TemporaryDirectory(prefix="llmfast-pycache-") as cache:
        env = bytecode_env(cache)
        for statement in statements:  # write the byte code; warm the file-system caches
            _run(f"import {statement}", env, importtime=False)
        for _ in range(rounds):
            _, baseline = _run("pass", env, importtime=False)
            for statement in statements:
                stderr, _ = _run(f"import {statement}", env, importtime=True)
                samples[statement]["importtime"].append(cumulative_us(stderr, statement))
                _, cpu = _run(f"import {statement}", env, importtime=False)
                samples[statement]["cpu"].append((cpu - baseline) * 1e6)
    return samples


def main(argv: Sequence[str]) -> None:
    rounds = int(argv[0]) if argv else 15
    samples = measure(STATEMENTS, rounds)
    for figure in ("importtime", "cpu"):
        medians = {s: statistics.median(v[figure]) for s, v in samples.items()}
        for statement, micros in medians.items():
            print(f"{figure:<10} import {statement:<8} {micros / 1000:8.1f} ms")
        ratio = medians["llmfast"] / medians["aiohttp"]
        print(f"{figure:<10} import llmfast / import aiohttp = {ratio:.2f}x (median of {rounds})")


if __name__ == "__main__":
    main(sys.argv[1:])
