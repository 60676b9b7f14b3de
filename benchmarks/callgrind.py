"""Instructions per call under valgrind's callgrind: a CPU figure that machine noise leaves alone.

Each measurement runs ``fixed_calls.py`` twice in fresh processes under
``valgrind --tool=callgrind``, with ``short`` and ``long`` call counts, and returns
``(Ir(long) - Ir(short)) / (long - short)``: the instructions one more call costs, with
interpreter start-up, imports, connection set-up and warm-up cancelled out.

A server (a gateway) is counted with ``counted_server``: it runs under callgrind
while the block drives it, then gets SIGTERM; callgrind writes its totals when the
process exits, so the server must stop cleanly on SIGTERM (a handler that ends its
loop), not die of the signal.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
_TOTAL = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def find_valgrind() -> str | None:
    """The valgrind executable, or None when it is not installed."""
    return shutil.which("valgrind")


def _under_callgrind(command: list[str], out: Path) -> list[str]:
    valgrind = find_valgrind() or "valgrind"
    # --dump-instr=no: totals only (the default); one dump, at exit
    return [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}", *command]


def _total(out: Path) -> int:
    found = _TOTAL.search(out.read_bytes()) if out.exists() else None
    if found is None:
        raise RuntimeError("callgrind wrote no instruction total")
    return int(found.group(1))


def count_instructions(command: list[str], env: dict[str, str] | None = None) -> int:
    """Instructions ``command`` executes under callgrind (the total, start-up included)."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "callgrind.out"
        done = subprocess.run(
            _under_callgrind(command, out),
            cwd=BENCH.parent,
            env=dict(os.environ) if env is None else env,
            capture_output=True,
            timeout=1800,
        )
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"callgrind run failed: {' | '.join(tail)}")
        return _total(out)


@dataclass
class CountedServer:
    """A server process under callgrind: ``instructions`` is set once it has exited."""

    process: subprocess.Popen[bytes]
    instructions: int | None = None


@contextmanager
def counted_server(
    command: list[str], env: dict[str, str] | None = None, stop_timeout: float = 600.0
) -> Iterator[CountedServer]:
    """Run ``command`` (a server) under callgrind while the block runs; on leaving,
    SIGTERM it, wait for its exit and read its instruction total (start-up included)."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "callgrind.out"
        process = subprocess.Popen(
            _under_callgrind(command, out),
            cwd=BENCH.parent,
            env=dict(os.environ) if env is None else env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        counted = CountedServer(process)
        try:
            yield counted
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise RuntimeError("the server did not stop on SIGTERM") from None
        if process.returncode != 0:
            raise RuntimeError(f"the server exited with {process.returncode} under callgrind")
        counted.instructions = _total(out)


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
