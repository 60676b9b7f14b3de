"""Instructions per call under valgrind's callgrind: a CPU figure that machine noise leaves alone.

Each measurement runs ``fixed_calls.py`` twice in fresh processes under
``valgrind --tool=callgrind``, with ``short`` and ``long`` call counts, and returns
``(Ir(long) - Ir(short)) / (long - short)``: the instructions one more call costs, with
interpreter start-up, imports, connection set-up and warm-up cancelled out.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
_TOTAL = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def find_valgrind() -> str | None:
    """The valgrind executable, or None when it is not installed."""
    return shutil.which("valgrind")


def count_instructions(command: list[str], env: dict[str, str] | None = None) -> int:
    """Instructions ``command`` executes under callgrind (the total, start-up included)."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "callgrind.out"
        valgrind = find_valgrind() or "valgrind"
        done = subprocess.run(
            [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}", *command],
            cwd=BENCH.parent,
            env=dict(os.environ) if env is None else env,
            capture_output=True,
            timeout=1800,
        )
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"callgrind run failed: {' | '.join(tail)}")
        found = _TOTAL.search(out.read_bytes())
        if found is None:
            raise RuntimeError("callgrind wrote no instruction total")
        return int(found.group(1))


def instructions_per_call(
    client: str,
    url: str,
    mode: str,
    concurrency: int,
    short: int,
    long: int,
    env: dict[str, str] | None = None,
) -> float:
    """Instructions one more ``mode`` call of ``client`` costs at ``concurrency``."""
    if long <= short:
        raise ValueError("long must be greater than short")
    base = [sys.executable, str(BENCH / "fixed_calls.py"), "--client", client, "--url", url]
    base += ["--mode", mode, "--concurrency", str(concurrency)]
    environment = dict(os.environ if env is None else env)
    few = count_instructions([*base, "--calls", str(short)], environment)
    many = count_instructions([*base, "--calls", str(long)], environment)
    return (many - few) / (long - short)
