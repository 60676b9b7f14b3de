"""Peak memory of a provider-batch job as it grows: 10k, 100k, 1M small requests through
``client.map(..., via="batch")`` against the mock server (OpenAI files + batches).

Run: python benchmarks/provider_batch_memory.py [--sizes 10000,100000,1000000] [--stats]

The mock server runs in its own process (``python -m llmfast.testing``); each size runs
in a fresh worker process (this script with ``--worker N``) that reads its input from a
generator, writes the checkpoint (``fsync=False``: the disk is not what is measured),
counts the results as they come (``ordered=False``) and reports its peak RSS
(``ru_maxrss``). The floor is a worker that imports the same modules, opens a client
and sends nothing. Flat memory means the peak barely moves from 10k to 1M.

``--stats`` runs every size a second time with ``Client(stats=True)`` (each item
reported as a ``done`` event and priced), interleaved with the plain run, to show what
the reporting costs in time and memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

from servers import mock_server

from llmfast import Client
from llmfast.batch.provider import ProviderBatchOptions


def prompts(n: int) -> Iterator[str]:
    for i in range(n):
        yield f"small request {i}"


async def work(url: str, n: int, stats: bool) -> dict[str, float]:
    started = time.perf_counter()
    done = 0
    with tempfile.TemporaryDirectory() as directory:
        client = Client(base_url=url, api_key="sk-bench", model="gpt-4o-mini", stats=stats)
        async with client:
            if n:
                batch = client.map(
                    prompts(n),
                    via="batch",
                    ordered=False,
                    checkpoint=os.path.join(directory, "run.jsonl"),
                    fsync=False,
                    progress=False,
                    total=n,
                    batch_options=ProviderBatchOptions(poll_interval=0.05, max_poll_interval=0.5),
                )
                async for result in batch:
                    done += result.ok
            if stats:
                assert client.stats().batch_calls == n
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"n": n, "ok": done, "peak_mb": peak_kb / 1024, "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--stats", action="store_true", help="also run with stats=True")
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(asyncio.run(work(args.url, args.worker, args.stats))))
        return
    sizes = [0, *(int(s) for s in args.sizes.split(","))]
    rows = []
    with mock_server(chunks=1) as server:
        for n in sizes:
            for stats in (False, True) if args.stats else (False,):
                command = [sys.executable, __file__, "--worker", str(n), "--url", server.url]
                command += ["--stats"] if stats else []
                out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                row = json.loads(out.strip().splitlines()[-1])
                label = "floor (no job)" if n == 0 else f"{n:>9,} requests"
                label += " +stats" if stats else ""
                print(
                    f"{label:>24}: peak RSS {row['peak_mb']:7.1f} MB, "
                    f"{row['seconds']:7.1f} s, {int(row['ok']):,} ok",
                    flush=True,
                )
                if not stats:
                    rows.append(row)
    floor = rows[0]["peak_mb"]
    smallest = rows[1]["peak_mb"]
    for row in rows[2:]:
        print(
            f"{int(row['n']):>9,}: +{row['peak_mb'] - smallest:.1f} MB over {int(rows[1]['n']):,}"
            f" ({row['peak_mb'] / smallest:.2f}x), +{row['peak_mb'] - floor:.1f} MB over the floor"
        )


if __name__ == "__main__":
    main()
