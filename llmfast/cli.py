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
import sys
from collections.abc import Sequence

from llmfast._cli_batch import batch
from llmfast._cli_common import UsageError, client_for, fail, params_of, parser
from llmfast.errors import ConfigurationError, LLMFastError

__all__ = ["main"]

_client = client_for  # the earlier names of these helpers (tests import them from here)
_parser = parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["serve"]:
        from llmfast.gateway.cli import main as serve

        return serve(args_list[1:])
    if args_list[:1] == ["serve-mock"]:
        from llmfast.testing.__main__ import main as serve_mock

        return serve_mock(args_list[1:])
    args = parser().parse_args(args_list)
    try:
        if args.command == "chat":
            return asyncio.run(_chat(args, _prompt(args)))
        return batch(args, args_list)
    except (UsageError, ConfigurationError) as exc:  # CheckpointError included
        return fail(f"error: {exc}", 2)
    except LLMFastError as exc:
        return fail(f"error: {type(exc).__name__}: {exc}", 1)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except BrokenPipeError:  # `llmfast chat ... | head`: the reader went away
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


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
    params = params_of(args)
    out = sys.stdout
    async with client_for(args) as client:
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


if __name__ == "__main__":
    raise SystemExit(main())
