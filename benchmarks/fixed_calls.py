"""Make a fixed number of calls with one client, for instruction counting under callgrind.

    python benchmarks/fixed_calls.py --client llmfast --url http://127.0.0.1:PORT/v1 \
        --mode stream --concurrency 16 --calls 400

``stream_floor.py --callgrind`` runs this twice per client (a short and a long count) under
``valgrind --tool=callgrind`` and divides the difference in instructions by the difference
in calls, which leaves start-up, imports and warm-up out of the figure. Instruction counts
do not depend on what else the machine is doing, so they compare clients exactly where
wall-clock CPU time on a shared machine cannot.
"""

from __future__ import annotations

import argparse
import asyncio

from clients import PROMPT, create


async def _run(client_name: str, url: str, mode: str, concurrency: int, calls: int) -> None:
    client = create(client_name, url)
    left = calls

    async def loop() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            if mode == "stream":
                chunks, text = await client.stream(PROMPT)
                if not text or chunks < 2:
                    raise SystemExit(f"{client_name}: an empty stream ({chunks} chunks)")
            elif not await client.chat(PROMPT):
                raise SystemExit(f"{client_name}: an empty reply")

    try:
        await asyncio.gather(*(loop() for _ in range(concurrency)))
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--client", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=("stream", "chat"), required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--calls", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(_run(args.client, args.url, args.mode, args.concurrency, args.calls))


if __name__ == "__main__":
    main()
