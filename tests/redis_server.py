"""A real ``redis-server`` for the tests, started on a free loopback port.

``scripts/test.sh`` installs ``redis-server`` (``scripts/system-packages.sh``);
elsewhere the Redis tests skip with a clear reason when the binary is missing. Under
``CI=true`` a missing binary is an error, so CI can never pass by skipping them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_redis() -> Iterator[str]:
    """Start ``redis-server`` (no persistence) and yield its ``redis://`` URL."""
    with redis_process() as redis:
        yield redis.url


class RedisProcess:
    """A running ``redis-server``: its ``url``, and ``stop()`` to end it early."""

    def __init__(self, url: str, process: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.process = process

    def stop(self) -> None:
        """Terminate it and wait until it has exited (a no-op once stopped)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def redis_process(port: int | None = None) -> Iterator[RedisProcess]:
    """Start ``redis-server`` (no persistence) on ``port`` (default: a free one);
    stopped on exit if not before."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed; scripts/system-packages.sh installs it")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with tempfile.TemporaryDirectory(prefix="llmfast-redis-") as folder:
        port = _free_port() if port is None else port
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                folder,
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        redis = RedisProcess(f"redis://127.0.0.1:{port}/0", process)
        try:
            _wait_until_listening(port, process)
            yield redis
        finally:
            redis.stop()


def _wait_until_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    """Poll the port with a bounded number of connection attempts (a readiness check)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            # Not accepting yet: block on the process for a moment instead of spinning.
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.02)
    raise RuntimeError("redis-server did not start listening within 10 s")
