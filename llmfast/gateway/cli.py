"""``llmfast serve``: run the gateway until SIGTERM or Ctrl-C, then drain and stop.

::

    llmfast serve --config gateway.toml            # as configured
    llmfast serve --config gateway.toml --workers 4  # 4 processes on one port
    llmfast serve --mock                           # against the built-in test server

Exit status: 0 after a clean stop, 2 for a bad configuration or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence

import msgspec

from llmfast.errors import ConfigurationError
from llmfast.gateway.config import (
    GatewayConfig,
    GatewayConfigError,
    load_config,
    parse_config,
    parse_listen,
)

__all__ = ["main"]

_WORKER_ENV = "LLMFAST_GATEWAY_WORKER"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmfast serve",
        description="An OpenAI-compatible gateway: one cache, one quota and one set of "
        "in-flight calls shared by every client.",
    )
    parser.add_argument("--config", help="the gateway's TOML configuration file")
    parser.add_argument(
        "--mock",
        action="store_true",
        help="serve the model 'mock' from llmfast's built-in test server (a try-out)",
    )
    parser.add_argument("--listen", help="HOST:PORT, instead of the config's server.listen")
    parser.add_argument(
        "--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``llmfast serve``; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        import llmfast.gateway.app  # noqa: F401  (the extra's packages are there)
    except ImportError as exc:  # prometheus-client (or tomli) missing
        print(
            f"error: llmfast serve needs the gateway extra ({exc.name} is missing): "
            "pip install 'llmfast[gateway]'",
            file=sys.stderr,
        )
        return 2
    if not args.config and not args.mock:
        print("error: give --config FILE, or --mock to try it out", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("error: --workers must be >= 1", file=sys.stderr)
        return 2
    try:
        if args.mock:
            _configure_logging()
            return asyncio.run(_serve_mock(args))
        config = load_config(args.config)
        if args.listen:
            config = _with_listen(config, args.listen)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _configure_logging()
    with _workers(args, config):
        asyncio.run(_serve(config, reuse_port=args.workers > 1 or _WORKER_ENV in os.environ))
    return 0


def _configure_logging() -> None:
    """The gateway's messages to stderr as they are (the access log writes its own
    lines: see [`AccessLog`][llmfast.gateway.access_log.AccessLog])."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")


async def _serve(config: GatewayConfig, *, reuse_port: bool) -> None:
    from llmfast.gateway.app import Gateway

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with Gateway(config, reuse_port=reuse_port) as gateway:
        # What start-up made lives as long as the process: keep the collector from
        # walking it again and again (every request allocates, so it runs often).
        gc.freeze()
        print(f"llmfast gateway on {gateway.url}/v1 (pid {os.getpid()})", flush=True)
        await stop.wait()
        await gateway.stop_listening()
        print("stopped listening; draining in-flight calls, then stopping", flush=True)


async def _serve_mock(args: argparse.Namespace) -> int:
    from llmfast.testing import MockServer

    async with MockServer() as upstream:
        text = f"""
[server]
listen = "{args.listen or "127.0.0.1:4000"}"
[models.mock]
coalesce = true
[[models.mock.deployments]]
provider = "openai"
base_url = "{upstream.url}"
model = "mock-model"
"""
        config = parse_config(text, source="--mock")
        os.environ.setdefault("OPENAI_API_KEY", "")
        await _serve(config, reuse_port=False)
    return 0


def _with_listen(config: GatewayConfig, listen: str) -> GatewayConfig:
    if parse_listen(listen) is None:
        raise GatewayConfigError(f"--listen {listen!r}: expected HOST:PORT")
    server = msgspec.structs.replace(config.server, listen=listen)
    return msgspec.structs.replace(config, server=server)


@contextlib.contextmanager
def _workers(args: argparse.Namespace, config: GatewayConfig) -> Iterator[None]:
    """Start ``--workers - 1`` more processes on the same port; stop them with this one."""
    if args.workers <= 1 or _WORKER_ENV in os.environ:
        yield
        return
    command = [sys.executable, "-m", "llmfast", "serve", "--config", args.config]
    if args.listen:
        command += ["--listen", args.listen]
    env = {**os.environ, _WORKER_ENV: "1"}
    children = [subprocess.Popen(command, env=env) for _ in range(args.workers - 1)]
    try:
        yield
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=config.server.grace + 5)
            except subprocess.TimeoutExpired:
                child.kill()
