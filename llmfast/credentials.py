"""Missing API keys are caught before anything is sent.

A ``Client`` built from a provider name (``Client(model=...)``,
``Client(provider="anthropic:...")``, ``Client(base_url=...)``, the ``llmfast`` command)
checks, once, that it has credentials for where it will send. Without them it raises
[`MissingCredentialsError`][llmfast.errors.MissingCredentialsError] naming the
environment variable to set, instead of sending an unauthenticated request that the
server answers with a 401 (or a keyless server with something worse).

No key is needed:

- for Ollama (it takes none);
- for a host on this machine or a private network: ``localhost`` and ``*.localhost``,
  loopback, private, link-local and other non-global IP addresses (``127.0.0.1``,
  ``::1``, ``10.x``, ``192.168.x``, ``100.64.x``...), single-label names (``vllm``,
  ``ollama``: container and cluster service names) and the ``.local``, ``.internal``,
  ``.lan`` and ``.home.arpa`` domains;
- when credentials come another way: an ``Authorization`` (or any ``*key*``,
  ``*token*``, ``*auth*``) header in ``headers``, user-info in the URL, or a ``key=``
  query parameter;
- when ``api_key=""`` is passed: an explicit "this server needs no key".

A backend you build yourself (``Client(OpenAIBackend(url))``) is sent as built.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

from llmfast.errors import MissingCredentialsError

__all__ = ["KEY_VARIABLES", "check_credentials", "is_local_host"]

KEY_VARIABLES: Mapping[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "openai-responses": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
}
"""The environment variables each provider's key is read from, in order (Ollama: none)."""

_NAMES = {
    "openai": "OpenAI",
    "openai-responses": "OpenAI",
    "anthropic": "Anthropic",
    "gemini": "Gemini",
}
_OFFICIAL_HOSTS = {
    "openai": "api.openai.com",
    "openai-responses": "api.openai.com",
    "anthropic": "api.anthropic.com",
    "gemini": "generativelanguage.googleapis.com",
}
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")
_CREDENTIAL_WORDS = ("auth", "key", "token")
_KEY_PARAMS = frozenset({"key", "api_key", "api-key", "apikey", "access_token", "token"})


def is_local_host(host: str | None) -> bool:
    """True for a host on this machine or a private network (see the module doc)."""
    if not host:
        return False
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(_LOCAL_SUFFIXES):
        return True
    if "." not in host and ":" not in host:
        return True  # a single label: a container, cluster or LAN service name
    try:
        address = ipaddress.ip_address(host.strip("[]").partition("%")[0])
    except ValueError:
        return False
    return not address.is_global


def check_credentials(
    provider: str,
    base_url: str,
    api_key: str | None,
    headers: Mapping[str, str] | None,
) -> None:
    """Raise ``MissingCredentialsError`` if a request to ``base_url`` for ``provider``
    would go out without credentials where they are needed.

    ``api_key`` is the key given explicitly (``None``: not given; ``""``: none wanted).
    """
    variables = KEY_VARIABLES.get(provider)
    if variables is None or api_key is not None:
        return
    if any(os.environ.get(name) for name in variables):
        return
    if headers and any(word in name.lower() for name in headers for word in _CREDENTIAL_WORDS):
        return
    parts = urlsplit(base_url)
    if parts.username or parts.password or is_local_host(parts.hostname):
        return
    if parts.query and any(k.lower() in _KEY_PARAMS for k, _ in parse_qsl(parts.query)):
        return
    raise MissingCredentialsError(
        _message(provider, parts.hostname or "", variables), provider=provider, env_vars=variables
    )


def _message(provider: str, host: str, variables: tuple[str, ...]) -> str:
    where = " or ".join(variables)
    if host == _OFFICIAL_HOSTS[provider]:
        return f"no {_NAMES[provider]} API key: set {where}, or pass api_key=..."
    name = _NAMES[provider]
    article = "an" if name[0] in "AEIOU" else "a"
    return (
        f"no API key for {host}: set {where} (the key llmfast sends to {article} {name}"
        f"-compatible base_url), or pass api_key=...; if that server needs no key, pass"
        ' api_key=""'
    )
