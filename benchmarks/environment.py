"""What a run records about its surroundings: the machine, library versions, import times."""

from __future__ import annotations

import datetime
import importlib.metadata
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["import_time_us", "machine"]

ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = ("llmfast", "aiohttp", "msgspec", "openai", "httpx2", "httpx", "litellm")


def import_time_us(statement: str, repeats: int, env: Mapping[str, str]) -> float | None:
    """Median over ``repeats`` runs of the cumulative ``-X importtime`` of the named modules."""
    modules = [m.strip() for m in statement.split(",")]
    if not all(importlib.util.find_spec(m) is not None for m in modules):
        return None
    command = [sys.executable, "-X", "importtime", "-c", f"import {statement}"]
    subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=True)  # warm caches
    samples = []
    for _ in range(repeats):
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
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


def _nginx_version(nginx: str | None) -> str | None:
    if nginx is None:
        return None
    done = subprocess.run([nginx, "-v"], capture_output=True, text=True)
    return done.stderr.strip().rpartition("/")[2] or None


def machine(nginx: str | None = None) -> dict[str, Any]:
    """The machine, the libraries' versions (nginx's too, if used) and the git commit."""
    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {lib: v for lib in LIBRARIES if (v := _version(lib)) is not None}
    if (version := _nginx_version(nginx)) is not None:
        versions["nginx"] = version
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
