"""The SSE and NDJSON decoders on one very long line, fed in 16 KiB reads.

    .venv/bin/python benchmarks/long_line.py [--mib 32] [--read-kib 16]

Decoding must be linear in the bytes fed however a line is cut: a 32 MiB event in
16 KiB reads (2,048 reads) should take well under a second. Prints the seconds each
decoder takes, best of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from llmfast.backends.ndjson import NDJSONDecoder
from llmfast.backends.sse import SSEDecoder


def _sse(body: bytes, step: int) -> Callable[[], int]:
    def run() -> int:
        decoder = SSEDecoder(max_event_bytes=None)
        events = 0
        for i in range(0, len(body), step):
            events += len(decoder.feed(body[i : i + step]))
        decoder.close()
        return events

    return run


def _sse_payloads(body: bytes, step: int) -> Callable[[], int]:
    def run() -> int:
        decoder = SSEDecoder(max_event_bytes=None)
        events = 0
        for i in range(0, len(body), step):
            events += len(decoder.feed_payloads(body[i : i + step]))
        decoder.close()
        return events

    return run


def _ndjson(body: bytes, step: int) -> Callable[[], int]:
    def run() -> int:
        decoder = NDJSONDecoder[bytes](bytes, max_line_bytes=None)
        lines = 0
        for i in range(0, len(body), step):
            lines += len(decoder.feed_lines(body[i : i + step]))
        lines += len(decoder.close_lines())
        return lines

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--mib", type=int, default=32, help="line length, MiB")
    parser.add_argument("--read-kib", type=int, default=16, help="read size, KiB")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    size, step = args.mib << 20, args.read_kib << 10
    text = b'{"x":"' + b"a" * size + b'"}'
    cases = {
        "sse feed": (_sse(b"data: " + text + b"\n\n", step), 1),
        "sse feed_payloads": (_sse_payloads(b"data: " + text + b"\n\n", step), 1),
        "ndjson": (_ndjson(text + b"\n", step), 1),
    }
    print(f"one {args.mib} MiB line in {args.read_kib} KiB reads, best of {args.repeats}")
    for name, (run, expected) in cases.items():
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            got = run()
            best = min(best, time.perf_counter() - start)
            if got != expected:
                raise SystemExit(f"{name}: {got} events, expected {expected}")
        print(f"{name:>18}: {best:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
