"""Which event loop serves which local port: lets ``SyncClient`` refuse a blocking call
that the loop of the calling thread would itself have to answer (a deadlock).

Dependency-free, so the sync client can import it without loading the test server.
"""

from __future__ import annotations

import asyncio
import socket
import weakref
from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["loopback_target", "register", "served_by", "unregister"]

_LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "::", ""}
_SERVED: dict[int, weakref.ReferenceType[asyncio.AbstractEventLoop]] = {}
"""Local port -> the loop serving it (``MockServer`` registers itself)."""


def register(port: int, loop: asyncio.AbstractEventLoop) -> None:
    _SERVED[port] = weakref.ref(loop)


def unregister(port: int) -> None:
    _SERVED.pop(port, None)


def _is_loopback(host: str) -> bool:
    return host in _LOOPBACK or host.startswith("127.")


def loopback_target(url: str | None) -> int | None:
    """The port of ``url`` when it points at this machine, else ``None``."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return port if _is_loopback(parts.hostname or "") else None


def served_by(loop: asyncio.AbstractEventLoop, ports: Iterable[int]) -> int | None:
    """The first of ``ports`` that ``loop`` serves (a registered server, or a listening
    socket on a loopback or wildcard address watched by the loop's selector), or ``None``."""
    wanted = set(ports)
    for port in wanted:
        ref = _SERVED.get(port)
        if ref is not None and ref() is loop:
            return port
    selector = getattr(loop, "_selector", None)  # selector loops only (not uvloop/proactor)
    if selector is None:
        return None
    for key in list(selector.get_map().values()):
        listening = _listening_port(key.fd)
        if listening in wanted:
            return listening
    return None


def _listening_port(fd: int) -> int | None:
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return None
    try:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return None
        if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            return None
        host, port = sock.getsockname()[:2]
        return port if _is_loopback(host) else None
    except OSError:
        return None
    finally:
        sock.detach()  # the fd belongs to the loop: never close it
