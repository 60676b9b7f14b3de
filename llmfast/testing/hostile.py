"""Bodies of the hostile and surprising replies: HTML pages, deep nesting, gzip bombs."""

from __future__ import annotations

import functools
import struct
import zlib

__all__ = ["CAPTIVE_PORTAL", "NGINX_502", "gzip_bomb", "nested_json", "nested_payload"]

CAPTIVE_PORTAL = (
    b"<!DOCTYPE html>\n<html><head><title>Sign in to Wi-Fi</title>"
    b"<style>body { font-family: sans-serif; }</style>"
    b"<script>window.location = '/login';</script></head>\n"
    b"<body><h1>Welcome to Airport Wi-Fi</h1><p>Please sign in to continue &amp; browse.</p>"
    b"</body></html>\n"
)
"""What a captive portal answers to any request, with status 200."""

NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n"
    b"</body>\r\n</html>\r\n"
    + b"<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n"
    * 6
)
"""nginx's own 502 page (what a reverse proxy answers when its upstream is down)."""

_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
_MIB = 1 << 20


@functools.lru_cache(maxsize=4)
def gzip_bomb(size: int) -> bytes:
    """A valid gzip stream (about size/1000 bytes) that inflates to ``size`` bytes of
    spaces after a ``{``: JSON that never ends. Built from one fully flushed deflate
    block repeated, so building a 1 GiB bomb takes well under a second."""
    blocks, tail = divmod(max(size - 1, 0), _MIB)
    space = b" " * _MIB
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(b"{") + compressor.flush(zlib.Z_FULL_FLUSH)
    compressor.compress(space)
    block = compressor.flush(zlib.Z_FULL_FLUSH)
    last = compressor.compress(b" " * tail) + compressor.flush(zlib.Z_FINISH)
    crc = zlib.crc32(b"{")
    for _ in range(blocks):
        crc = zlib.crc32(space, crc)
    crc = zlib.crc32(b" " * tail, crc)
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return _GZIP_HEADER + head + block * blocks + last + trailer


def nested_payload(depth: int) -> bytes:
    """A JSON array nested ``depth`` deep."""
    return b"[" * depth + b"]" * depth


def nested_json(depth: int) -> bytes:
    """A JSON object whose one (unknown) field is an array nested ``depth`` deep."""
    return b'{"id": "nested", "nested": ' + nested_payload(depth) + b"}"
