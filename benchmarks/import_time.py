"""``import llmfast`` against ``import aiohttp``: ``python benchmarks/import_time.py [N]``.

Each round runs ``python -X importtime -c "import X"`` once per statement, in a fresh
interpreter, alternating the statements so that load on the machine weighs on both
alike; the figure is the module's cumulative ``-X importtime`` entry (everything it
imports included, interpreter start-up not), and the report is the median over N
rounds (default 15) and the ratio of the medians.
"""

from __future__ import annotations

import os
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


def measure(statements: Sequence[str], rounds: int) -> dict[str, list[int]]:
    """Microseconds per statement, one sample per round, the statements interleaved."""
    samples: dict[str, list[int]] = {s: [] for s in statements}
    with tempfile.TemporaryDirectory(prefix="llmfast-pycache-") as cache:
        env = bytecode_env(cache)
        for statement in statements:  # write the byte code; warm the file-system caches
            command = [sys.executable, "-c", f"import {statement}"]
            subprocess.run(command, cwd=ROOT, env=env, check=True)
        for _ in range(rounds):
            for statement in statements:
                command = [sys.executable, "-X", "importtime", "-c", f"import {statement}"]
                done = subprocess.run(
                    command, cwd=ROOT, env=env, capture_output=True, text=True, check=True
                )
                samples[statement].append(cumulative_us(done.stderr, statement))
    return samples


def main(argv: Sequence[str]) -> None:
    rounds = int(argv[0]) if argv else 15
    samples = measure(STATEMENTS, rounds)
    medians = {s: statistics.median(v) for s, v in samples.items()}
    for statement, micros in medians.items():
        print(f"import {statement:<8} {micros / 1000:8.1f} ms  (median of {rounds})")
    ratio = medians["llmfast"] / medians["aiohttp"]
    print(f"import llmfast / import aiohttp = {ratio:.2f}x")


if __name__ == "__main__":
    main(sys.argv[1:])
