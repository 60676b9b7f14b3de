"""``llmfast batch``: a JSON Lines file of requests, resumably (see ``llmfast.cli``)."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import time
from collections.abc import Generator, Sequence
from typing import Any, TextIO

from llmfast._cli_common import UsageError, client_for, fail, params_of
from llmfast.batch import Batch
from llmfast.batch.lines import InputLineError, check_line, decode_line, read_lines
from llmfast.client import Client
from llmfast.errors import BatchAbortedError
from llmfast.redact import redact_url

__all__ = ["batch"]

_MAX_REPORTED = 10


def _check_input(path: str, defaults: dict[str, Any], err: TextIO) -> int:
    """Validate every line before anything is sent; return the number of requests."""
    bad = 0
    count = 0
    for number, line in read_lines(path):
        count = number
        try:
            check_line(number, line, defaults)
        except InputLineError as exc:
            bad += 1
            if bad <= _MAX_REPORTED:
                print(f"llmfast: {path}: {exc}", file=err)
    if bad:
        more = f" ({bad - _MAX_REPORTED} more not shown)" if bad > _MAX_REPORTED else ""
        raise UsageError(f"{path}: {bad} malformed line(s){more}; nothing was sent")
    if not count:
        raise UsageError(f"{path} holds no requests")
    return count


def _items(path: str) -> Generator[Any, None, None]:
    for number, line in read_lines(path):
        yield decode_line(number, line)


def batch(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Run ``llmfast batch`` (or its ``--status`` / ``--cancel``); the exit status."""
    if args.status or args.cancel:
        from llmfast.batch.provider.command import control

        return control(client_for(args), args.status, args.cancel)
    if args.input is None or args.output is None:
        raise UsageError("batch needs INPUT and -o OUTPUT (or --status / --cancel CHECKPOINT)")
    if os.path.abspath(args.input) == os.path.abspath(args.output):
        raise UsageError("the output file must not be the input file")
    if not os.path.isfile(args.input):
        raise UsageError(f"{args.input}: no such file")
    client = client_for(args, rpm=args.rpm, stats=args.provider_batch)  # its cost, at the end
    defaults: dict[str, Any] = {"model": client.model, **params_of(args)}
    total = _check_input(args.input, defaults, sys.stderr)
    items = _items(args.input)
    batch: Any
    if args.provider_batch:
        from llmfast.batch.provider.command import provider_batch

        batch = provider_batch(args, client, items, total, params_of(args))
    else:
        batch = Batch(
            client,
            items,
            concurrency=args.concurrency,
            ordered=False,
            stop_on_error=args.stop_on_error,
            abort_on_systematic=not args.keep_going,
            checkpoint=args.output,
            fsync=not args.no_fsync,
            progress=args.progress,
            total=total,
            **params_of(args),
        )
    command = _command(argv)
    try:
        return asyncio.run(_run_batch(args, client, batch))
    except KeyboardInterrupt:
        done = batch.succeeded + batch.resumed
        return fail(
            f"interrupted: {done} of {total} done ({batch.failed} failed) -> {args.output}\n"
            f"llmfast: to resume, run the same command: {command}",
            130,
        )
    except BatchAbortedError as exc:
        cause = exc.cause
        return fail(
            f"batch stopped: {exc.reason}: {type(cause).__name__}: {cause}\n"
            f"llmfast: {exc.done} of {total} done, {exc.failed} failed -> {args.output}; "
            f"fix the cause and run the same command to resume: {command} "
            "(--keep-going records every failure instead of stopping)",
            1,
        )
    finally:
        # A batch that stopped early leaves the input generator suspended: close its
        # file now, not whenever a garbage collection gets to it (ResourceWarning).
        items.close()


def _command(argv: Sequence[str]) -> str:
    """The command line that ran (to be run again): ``llmfast`` or ``python -m llmfast``."""
    here = os.path.dirname(os.path.abspath(__file__))
    main_module = os.path.abspath(sys.argv[0]) == os.path.join(here, "__main__.py")
    python = os.path.basename(sys.executable) or "python"
    prog = [python, "-m", "llmfast"] if main_module else ["llmfast"]
    return shlex.join([*prog, *map(redact_url, argv)])


async def _run_batch(args: argparse.Namespace, client: Client, batch: Any) -> int:
    started = time.perf_counter()
    total = batch.total
    async with client, batch:
        async for _ in batch:
            pass
    elapsed = time.perf_counter() - started
    done = batch.succeeded + batch.resumed
    print(
        f"llmfast: {done} of {total} done ({batch.resumed} resumed), {batch.failed} failed, "
        f"{batch.tokens:,} tokens in {elapsed:.1f} s -> {args.output}",
        file=sys.stderr,
    )
    if args.provider_batch:
        from llmfast.batch.summary import cost_line

        print(f"llmfast: this run's {cost_line(client.stats())}", file=sys.stderr)
    if batch.failed:
        print(
            f"llmfast: {batch.failed} request(s) failed; their errors are in {args.output}. "
            "Run the same command again to retry them.",
            file=sys.stderr,
        )
        return 1
    return 0
