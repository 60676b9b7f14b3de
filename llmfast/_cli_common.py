"""What the ``llmfast`` commands share: the command line's flags, the client they choose,
the call parameters, and how a failure is reported (see ``llmfast.cli``)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from llmfast import __version__
from llmfast.client import Client
from llmfast.layers import Retry
from llmfast.layers.ratelimit import RateLimit
from llmfast.pool import Timeouts
from llmfast.providers import PROVIDERS
from llmfast.redact import redact_text
from llmfast.transport import Layer

__all__ = ["UsageError", "client_for", "fail", "params_of", "parser"]

_CONFIGURED = ("LLMFAST_PROVIDER", "LLMFAST_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY")
"""Environment variables that mean a provider is configured."""


class UsageError(Exception):
    """Bad command-line input: reported with exit status 2."""


# --- the command line ----------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
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


def fail(message: str, status: int) -> int:
    print(f"llmfast: {redact_text(message)}", file=sys.stderr)
    return status


# --- the client ----------------------------------------------------------------------


def client_for(args: argparse.Namespace, rpm: int | None = None, stats: bool = False) -> Client:
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


def params_of(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if args.max_tokens is not None:
        params["max_tokens"] = args.max_tokens
    if args.temperature is not None:
        params["temperature"] = args.temperature
    return params
