"""The servers the benchmark calls, each in its own process on 127.0.0.1.

- ``mock_server``: ``python -m llmfast.testing`` (llmfast's aiohttp mock server), which
  can add a fixed latency before every reply (``--latency``).
- ``nginx_server``: nginx (``benchmarks/nginx/nginx.conf``) serving fixed replies
  captured from the mock server (``capture_replies``), so both send the same bytes.
- ``paced_server``: ``benchmarks/paced_upstream.py`` serving the same replies, a
  stream's events one per send, a fixed gap apart (as a live model streams).

Each context manager yields a ``Server`` and always stops the process.
"""

from __future__ import annotations

import json
import random
import re
import selectors
import shutil
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from clients import API_KEY, DIMENSIONS, EMBED_MODEL, MAX_TOKENS, MODEL, PROMPT, TEXTS

__all__ = [
    "Server",
    "capture_replies",
    "find_nginx",
    "mock_server",
    "nginx_server",
    "paced_server",
]

ROOT = Path(__file__).resolve().parent.parent
NGINX_CONF = ROOT / "benchmarks" / "nginx" / "nginx.conf"
_URL_LINE = re.compile(r"listening on (http://\S+)")


@dataclass(frozen=True)
class Server:
    """A running server: its kind, process id and the base URL for each mode."""

    kind: str  # "mock", "nginx" or "paced"
    pid: int
    url: str  # base URL ending in /v1
    stream_url: str  # the same for the mock server; nginx serves streams under /stream/v1

    def url_for(self, mode: str) -> str:
        return self.stream_url if mode == "stream" else self.url


def _stop(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def mock_server(
    chunks: int, latency: float = 0.0, env: Mapping[str, str] | None = None
) -> Iterator[Server]:
    """Start ``python -m llmfast.testing`` (``latency`` seconds before every reply)."""
    command = [sys.executable, "-m", "llmfast.testing", "--host", "127.0.0.1", "--port", "0"]
    command += ["--chunks", str(chunks), "--latency", str(latency)]
    with _announced(command, env) as (pid, url):
        yield Server("mock", pid, url, url)


@contextmanager
def _announced(
    command: list[str], env: Mapping[str, str] | None = None
) -> Iterator[tuple[int, str]]:
    """Run ``command`` (a server that prints ``listening on URL``): its pid and URL;
    always stopped."""
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        try:
            yield proc.pid, _read_url(proc, stderr)
        finally:
            _stop(proc)
            if proc.stdout is not None:
                proc.stdout.close()


def _read_url(proc: subprocess.Popen[str], stderr: IO[bytes], timeout: float = 30.0) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if selector.select(timeout):
            match = _URL_LINE.search(proc.stdout.readline())
            if match:
                return match.group(1)
    stderr.seek(0)
    detail = stderr.read().decode(errors="replace")[-2000:]
    raise RuntimeError(f"the server did not print its URL (exit {proc.poll()}):\n{detail}")


# -- nginx -----------------------------------------------------------------------------


def find_nginx() -> str | None:
    """The nginx executable (``$PATH``, then ``/usr/sbin``), or None."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def _post(url: str, body: dict[str, Any]) -> bytes:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        data: bytes = response.read()
        return data


def capture_replies(url: str) -> dict[str, bytes]:
    """The mock server's replies to the benchmark's three calls, as nginx will serve them."""
    messages = [{"role": "user", "content": PROMPT}]
    chat = {"model": MODEL, "messages": messages, "max_tokens": MAX_TOKENS}
    stream = {**chat, "stream": True, "stream_options": {"include_usage": True}}
    embed = {
        "model": EMBED_MODEL,
        "input": list(TEXTS),
        "dimensions": DIMENSIONS,
        "encoding_format": "float",
    }
    return {
        "chat.json": _post(f"{url}/chat/completions", chat),
        "stream.sse": _post(f"{url}/chat/completions", stream),
        "embed.json": _post(f"{url}/embeddings", embed),
    }


def openai_shaped(sse: bytes, seed: int = 7) -> bytes:
    """The mock server's stream ``sse`` in the shape of OpenAI's own streams today:
    ``"service_tier"`` after the model, ``"refusal":null`` in the role's delta, and each
    event padded with a random ``"obfuscation"`` string (as in the conformance
    transcript ``openai_chat_usage_last_chunk``, recorded in 2026)."""
    padding = random.Random(seed)
    alphabet = string.ascii_letters + string.digits
    out = []
    for event in sse.split(b"\n\n"):
        if not event.startswith(b"data: {"):
            out.append(event)
            continue
        body = json.loads(event[6:])
        shaped: dict[str, Any] = {}
        for key, value in body.items():
            shaped[key] = value
            if key == "model":
                shaped["service_tier"] = "default"
        for choice in shaped["choices"]:
            if "role" in choice["delta"]:
                choice["delta"]["refusal"] = None
        shaped["obfuscation"] = "".join(padding.choices(alphabet, k=padding.randint(1, 16)))
        compact = json.dumps(shaped, separators=(",", ":"), ensure_ascii=False)
        out.append(b"data: " + compact.encode())
    return b"\n\n".join(out)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)  # polling a child process's socket: no event to wait on
    detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"nginx did not start listening on {port} (exit {proc.poll()}):\n{detail}")


@contextmanager
def nginx_server(replies: Mapping[str, bytes], nginx: str | None = None) -> Iterator[Server]:
    """Run nginx in the foreground, one process, serving ``replies`` (name -> body)."""
    executable = nginx or find_nginx()
    if executable is None:
        raise RuntimeError("nginx is not installed (Debian: apt-get install nginx-light)")
    with tempfile.TemporaryDirectory(prefix="llmfast-nginx-") as scratch:
        directory = Path(scratch)
        (directory / "replies").mkdir()
        (directory / "tmp").mkdir()
        for name, body in replies.items():
            (directory / "replies" / name).write_bytes(body)
        port = _free_port()
        conf = NGINX_CONF.read_text().replace("@DIR@", scratch).replace("@PORT@", str(port))
        (directory / "nginx.conf").write_text(conf)
        command = [executable, "-p", scratch, "-c", str(directory / "nginx.conf")]
        log = directory / "error.log"
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_listening(proc, port, log)
            base = f"http://127.0.0.1:{port}"
            yield Server("nginx", proc.pid, f"{base}/v1", f"{base}/stream/v1")
        finally:
            _stop(proc)


@contextmanager
def paced_server(replies: Mapping[str, bytes], gap: float) -> Iterator[Server]:
    """Serve ``replies`` as nginx does, but a stream's events one per send, ``gap``
    seconds apart (``benchmarks/paced_upstream.py``)."""
    with tempfile.TemporaryDirectory(prefix="llmfast-paced-") as scratch:
        for name, body in replies.items():
            (Path(scratch) / name).write_bytes(body)
        port = _free_port()
        command = [sys.executable, str(ROOT / "benchmarks" / "paced_upstream.py"), scratch]
        command += [str(port), str(gap)]
        with _announced(command) as (pid, url):
            yield Server("paced", pid, url, url.removesuffix("/v1") + "/stream/v1")
