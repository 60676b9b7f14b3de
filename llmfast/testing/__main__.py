"""Run the mock LLM API server (OpenAI, Anthropic, Ollama and Gemini formats):
``python -m llmfast.testing --port 8000``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
from collections.abc import Sequence
from itertools import cycle, islice

from .replies import Reply
from .server import MockServer

_WORDS = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m llmfast.testing",
        description="Serve a mock LLM API (OpenAI, Anthropic, Ollama and Gemini formats).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--text", help="fixed reply text (default: echo the last user message)")
    what.add_argument("--echo", action="store_true", help="echo the last user message")
    parser.add_argument("--token-delay", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="delay before every reply's headers",
    )
    parser.add_argument(
        "--chunks",
        type=int,
        metavar="N",
        help="stream the reply as N content chunks (generates N words if no --text)",
    )
    return parser


def default_reply(args: argparse.Namespace) -> Reply:
    """The server's default reply for the parsed command line."""
    timing = {"token_delay": args.token_delay, "delay": args.latency}
    n = args.chunks
    if n is None:
        return Reply.echo(**timing) if args.text is None else Reply.text(args.text, **timing)
    if args.text is None:  # n words: the default tokenizer streams them as n chunks
        return Reply.text(" ".join(islice(cycle(_WORDS), n)), **timing)
    text: str = args.text
    parts = tuple(text[len(text) * i // n : len(text) * (i + 1) // n] for i in range(n))
    return dataclasses.replace(Reply.text(text, **timing), chunks=parts)


async def serve(host: str, port: int, default: Reply) -> None:
    """Serve until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C still works
            loop.add_signal_handler(sig, stop.set)
    async with MockServer(host=host, port=port, default=default, record=False) as server:
        print(f"llmfast mock server listening on {server.url}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.chunks is not None and (args.echo or args.chunks < 1):
        parser.error("--chunks needs N >= 1 and cannot be used with --echo")
    if args.token_delay < 0 or args.latency < 0:
        parser.error("--token-delay and --latency must be >= 0")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, default_reply(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
