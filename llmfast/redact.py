"""Credentials out of every URL llmfast shows: reprs, error messages, logs, metrics.

A base URL may carry credentials: user info (``https://user:secret@host/v1``) or a
query parameter (``?key=...``, ``?api_key=...``, ``?sig=...``).
[`redact_url`][llmfast.redact.redact_url] replaces them with ``***`` and leaves the
rest of the URL exactly as it was; [`redact_text`][llmfast.redact.redact_text] does
the same to every URL inside a message (an aiohttp exception's text, say). A URL with
nothing to hide comes back unchanged after one or two substring checks.

A query (or fragment) parameter counts as a credential when its name, compared
case-insensitively with ``-`` read as ``_``, is one of
[`SECRET_PARAMS`][llmfast.redact.SECRET_PARAMS] or ends in ``_key``, ``_token``,
``_secret``, ``_password``, ``_signature``, ``_credential`` or ``_sig``
(``x-api-key``, ``X-Amz-Signature``, ``client_secret``...).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

__all__ = ["MASK", "SECRET_PARAMS", "is_secret_param", "redact_text", "redact_url"]

MASK = "***"
"""What a credential is replaced with."""

SECRET_PARAMS = frozenset(
    {
        "key",
        "apikey",
        "api_key",
        "token",
        "access_token",
        "auth",
        "authorization",
        "secret",
        "password",
        "passwd",
        "pwd",
        "sig",
        "signature",
        "credential",
        "credentials",
    }
)
"""Query parameter names (lower case, ``-`` as ``_``) whose value is a credential."""

_SECRET_SUFFIXES = ("_key", "_token", "_secret", "_password", "_signature", "_credential", "_sig")
_CLOSING = ").,;:]}!"
_url_in_text: re.Pattern[str] | None = None  # compiled on first use: not at import


def is_secret_param(name: str) -> bool:
    """True when a query parameter called ``name`` holds a credential (see above)."""
    normal = unquote(name).strip().lower().replace("-", "_")
    return normal in SECRET_PARAMS or normal.endswith(_SECRET_SUFFIXES)


def _redact_params(params: str) -> str:
    parts = params.split("&")
    changed = False
    for i, part in enumerate(parts):
        name, eq, value = part.partition("=")
        secret = value.rstrip(_CLOSING)  # not a sentence's ")." after the URL
        if eq and secret and secret != MASK and is_secret_param(name):
            parts[i] = f"{name}={MASK}{value[len(secret) :]}"
            changed = True
    return "&".join(parts) if changed else params


def redact_url(url: str) -> str:
    """``url`` with its user info and credential-like parameters replaced by ``***``.

    ``https://user:pw@host/v1?key=abc&x=1`` becomes ``https://***@host/v1?key=***&x=1``;
    everything else is kept character for character, and a URL without credentials
    is returned unchanged.
    """
    if "@" not in url and "=" not in url:
        return url  # the common case: nothing that could be a credential
    start = url.find("://")
    start = start + 3 if start >= 0 else (2 if url.startswith("//") else 0)
    end = len(url)
    for mark in "/?#":
        at = url.find(mark, start)
        if 0 <= at < end:
            end = at
    head, rest = url[:end], url[end:]
    if start and "@" in url[start:end]:
        head = url[:start] + MASK + url[start:end][url[start:end].rfind("@") :]
    if "=" in rest:
        path, hash_, fragment = rest.partition("#")
        path, question, query = path.partition("?")
        rest = f"{path}{question}{_redact_params(query)}{hash_}{_redact_params(fragment)}"
    return head + rest


def redact_text(text: str) -> str:
    """``text`` with every ``scheme://...`` URL in it masked as by ``redact_url``."""
    if "://" not in text:
        return text
    global _url_in_text
    if _url_in_text is None:
        _url_in_text = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
    return _url_in_text.sub(lambda m: redact_url(m.group()), text)
