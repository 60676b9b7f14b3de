"""The ``llmfast`` command: ``chat``, ``batch``, ``serve`` and ``serve-mock``.

::

    llmfast chat "Say hello"                       # streams the answer
    echo "Say hello" | llmfast chat                # the prompt from stdin
    llmfast batch in.jsonl -o out.jsonl --concurrency 64 --rpm 500
    llmfast serve --config gateway.toml            # the gateway (see docs/gateway.md)
    llmfast serve-mock --port 8000                 # a local OpenAI-compatible test server

Exit status: 0 success, 1 a call failed (or some batch items did), 2 bad usage or
input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import time
from collections.abc import Generator, Sequence
from typing import Any, TextIO

from llmfast import __version__
from llmfast.batch import Batch
from llmfast.batch.lines import InputLineError, check_line, decode_line, read_lines
from llmfast.client import Client
from llmfast.errors import BatchAbortedError, ConfigurationError, LLMFastError
from llmfast.layers import Retry
from llmfast.layers.ratelimit import RateLimit
from llmfast.pool import Timeouts
from llmfast.providers import PROVIDERS
from llmfast.redact import redact_text, redact_url
from llmfast.transport import Layer

__all__ = ["main"]

_CONFIGURED = ("LLMFAST_PROVIDER", "LLMFAST_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY")
"""Environment variables that mean a provider is configured."""
_MAX_REPORTED = 10


class UsageError(Exception):
    """Bad command-line input: reported with exit status 2."""


# --- the command line ----------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmfast",
        description="Call LLM APIs from the terminal: chat, run batches, serve a mock API.",
        epilog="Keys come from the environment: OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY.",
    )
    parser.add_argument("--version", action="version", version=f"llmfast {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("provider")
    where.add_argument(
        "--provider",
        metavar="NAME",
        help=f"{', '.join(PROVIDERS)} (or NAME:MODEL; default $LLMFAST_PROVIDER or openai)",
    )
    where.add_argument("--base-url", metavar="URL", help="an OpenAI-compatible API root")
    where.add_argument("--model", help="the model (default: $LLMFAST_MODEL)")
    where.add_argument("--timeout", type=_positive_float, metavar="SECONDS", help="read timeout")
    tries = where.add_mutually_exclusive_group()
    tries.add_argument(
        "--max-attempts",
        type=_positive_int,
        default=5,
        metavar="N",
        help="attempts per request, retries of 429s, 5xx and network errors included (5)",
    )
    tries.add_argument(
        "--max-retries",
        type=_natural_int,
        metavar="N",
        help="retries per request, as the openai SDK counts them: N + 1 attempts (0: none)",
    )
    params = argparse.ArgumentParser(add_help=False)
    params.add_argument(
        "--max-tokens", type=_positive_int, metavar="N", help="most tokens to generate"
    )
    params.add_argument("--temperature", type=float, metavar="T", help="sampling temperature")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    chat = commands.add_parser(
        "chat", parents=[common, params], help="stream the answer to one prompt"
    )
    chat.add_argument(
        "prompt", nargs="?", help="the prompt (default: stdin when piped; - reads it)"
    )
    chat.add_argument("--system", metavar="TEXT", help="a system message")
    chat.add_argument("--no-stream", action="store_true", help="wait for the whole answer")

    batch = commands.add_parser(
        "batch",
        parents=[common, params],
        help="run a JSON Lines file of requests, resumably",
        description="Run every line of INPUT as a chat request. Each line is a JSON string "
        "(a prompt), a list of messages, or an object of chat parameters with "
        '"messages" or "prompt" (and optional "system", "model"). OUTPUT gets one line '
        "per finished request and doubles as the checkpoint: run the same command again "
        "to finish an interrupted batch.",
    )
    batch.add_argument("input", nargs="?", help="the requests, one JSON value per line")
    batch.add_argument("-o", "--output", help="results and checkpoint (JSONL); required")
    batch.add_argument(
        "--concurrency", type=_positive_int, default=16, metavar="N", help="requests in flight (16)"
    )
    batch.add_argument("--rpm", type=_positive_int, metavar="N", help="most requests a minute")
    batch.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when stderr is a terminal and tqdm is installed)",
    )
    batch.add_argument("--stop-on-error", action="store_true", help="stop at the first failure")
    batch.add_argument(
        "--keep-going",
        action="store_true",
        help="don't stop when every request fails the same way (a rejected key, a server "
        "that cannot be reached): record each failure",
    )
    batch.add_argument(
        "--no-fsync", action="store_true", help="don't fsync each result (faster, not power-safe)"
    )
    provider = batch.add_argument_group("provider batch API (half the price, within 24 hours)")
    provider.add_argument(
        "--provider-batch", action="store_true", help="run through the provider's batch API"
    )
    provider.add_argument(
        "--fallback-after",
        type=_positive_float,
        metavar="SECONDS",
        help="send what is still pending after SECONDS through the online API",
    )
    provider.add_argument(
        "--poll-interval",
        type=_positive_float,
        default=30.0,
        metavar="SECONDS",
        help="seconds between polls at first (30)",
    )
    provider.add_argument("--status", metavar="CHECKPOINT", help="show a checkpoint's batches")
    provider.add_argument("--cancel", metavar="CHECKPOINT", help="cancel a checkpoint's batches")

    commands.add_parser(
        "serve",
        help="run the gateway: an OpenAI-compatible server over llmfast's layers",
        add_help=False,
        description="See `llmfast serve --help`.",
    )
    commands.add_parser(
        "serve-mock",
        help="serve llmfast's local OpenAI-compatible test server",
        add_help=False,
        description="See `llmfast serve-mock --help`.",
    )
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _natural_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["serve"]:
        from llmfast.gateway.cli import main as serve

        return serve(args_list[1:])
    if args_list[:1] == ["serve-mock"]:
        from llmfast.testing.__main__ import main as serve_mock

        return serve_mock(args_list[1:])
    parser = _parser()
    args = parser.parse_args(args_list)
    try:
        if args.command == "chat":
            return asyncio.run(_chat(args, _prompt(args)))
        return _batch(args, args_list)
    except (UsageError, ConfigurationError) as exc:  # CheckpointError included
        return _fail(f"error: {exc}", 2)
    except LLMFastError as exc:
        return _fail(f"error: {type(exc).__name__}: {exc}", 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:  # `llmfast chat ... | head`: the reader went away
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _fail(message: str, status: int) -> int:
    print(f"llmfast: {redact_text(message)}", file=sys.stderr)
    return status


# --- the client ----------------------------------------------------------------------


def _client(args: argparse.Namespace, rpm: int | None = None, stats: bool = False) -> Client:
    """A client for the provider the flags and the environment choose."""
    if (
        args.provider is None
        and args.base_url is None
        and not any(os.environ.get(name) for name in _CONFIGURED)
    ):
        raise UsageError(
            "no provider configured: set OPENAI_API_KEY, or pass --provider or --base-url "
            "(`llmfast serve-mock` starts a local test server)"
        )
    attempts = args.max_attempts if args.max_retries is None else args.max_retries + 1
    layers: list[Layer] = [Retry(max_attempts=attempts)] if attempts > 1 else []
    if rpm is not None:
        layers.append(RateLimit(rpm=rpm))  # inside Retry: every attempt pays
    timeouts = None if args.timeout is None else Timeouts(read=args.timeout)
    # A missing key raises MissingCredentialsError (exit 2) here, before anything is read
    # or sent; the model is the provider's or $LLMFAST_MODEL.
    return Client(
        provider=args.provider,
        base_url=args.base_url,
        model=args.model,
        layers=layers,
        timeouts=timeouts,
        stats=stats,
    )


# --- chat ----------------------------------------------------------------------------


def _prompt(args: argparse.Namespace) -> str:
    prompt: str | None = args.prompt
    if prompt is None or prompt == "-":
        if prompt is None and sys.stdin.isatty():
            raise UsageError("give a prompt, or pipe one on stdin")
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise UsageError("the prompt is empty")
    return prompt


async def _chat(args: argparse.Namespace, prompt: str) -> int:
    messages: list[dict[str, str]] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": prompt})
    params = _params(args)
    out = sys.stdout
    async with _client(args) as client:
        if client.model is None:
            raise UsageError("no model: pass --model or set LLMFAST_MODEL")
        if args.no_stream:
            completion = await client.chat(messages, **params)
            text = completion.text or ""
            out.write(text)
        else:
            text = ""
            async with client.stream(messages, **params) as stream:
                async for text in stream.text_deltas():
                    out.write(text)
                    out.flush()
        if not text.endswith("\n"):
            out.write("\n")
        out.flush()
    return 0


def _params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if args.max_tokens is not None:
        params["max_tokens"] = args.max_tokens
    if args.temperature is not None:
        params["temperature"] = args.temperature
    return params


# --- batch ---------------------------------------------------------------------------


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


def _batch(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if args.status or args.cancel:
        from llmfast.batch.provider.command import control

        return control(_client(args), args.status, args.cancel)
    if args.input is None or args.output is None:
        raise UsageError("batch needs INPUT and -o OUTPUT (or --status / --cancel CHECKPOINT)")
    if os.path.abspath(args.input) == os.path.abspath(args.output):
        raise UsageError("the output file must not be the input file")
    if not os.path.isfile(args.input):
        raise UsageError(f"{args.input}: no such file")
    client = _client(args, rpm=args.rpm, stats=args.provider_batch)  # its cost, at the end
    defaults: dict[str, Any] = {"model": client.model, **_params(args)}
    total = _check_input(args.input, defaults, sys.stderr)
    items = _items(args.input)
    batch: Any
    if args.provider_batch:
        from llmfast.batch.provider.command import provider_batch

        batch = provider_batch(args, client, items, total, _params(args))
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
            **_params(args),
        )
    command = _command(argv)
    try:
        return asyncio.run(_run_batch(args, client, batch))
    except KeyboardInterrupt:
        done = batch.succeeded + batch.resumed
        return _fail(
            f"interrupted: {done} of {total} done ({batch.failed} failed) -> {args.output}\n"
            f"llmfast: to resume, run the same command: {command}",
            130,
        )
    except BatchAbortedError as exc:
        cause = exc.cause
        return _fail(
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


if __name__ == "__main__":
    raise SystemExit(main())
