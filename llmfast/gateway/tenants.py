"""Virtual keys: who is calling, and what they may use.

A request presents its key as ``Authorization: Bearer <key>`` (OpenAI's way) or
``x-api-key: <key>`` (Anthropic's). Keys are held only as SHA-256 digests and found by
digest, compared in constant time, so neither the keys nor how much of one matched
can be learnt from the gateway.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from llmfast.gateway.config import GatewayConfig, env_secret

__all__ = ["Tenant", "Tenants", "key_digest"]


def key_digest(key: str) -> str:
    """The hex SHA-256 digest of ``key``: what ``key_sha256`` in the config holds."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Tenant:
    """A virtual key's owner: its name, and the models it may use (``None``: all)."""

    name: str
    models: frozenset[str] | None

    def may_use(self, model: str) -> bool:
        return self.models is None or model in self.models

    def __repr__(self) -> str:
        return f"Tenant({self.name!r})"


class Tenants:
    """The virtual keys of a configuration. With no ``[keys]`` table the gateway is
    open: every request is the tenant ``"anonymous"``."""

    def __init__(self, config: GatewayConfig) -> None:
        self._by_digest: dict[bytes, Tenant] = {}
        for name, key in config.keys.items():
            digest = key.key_sha256 or key_digest(env_secret(key.key_env) or "")
            models = frozenset(key.models) if key.models is not None else None
            self._by_digest[bytes.fromhex(digest)] = Tenant(name, models)
        self.open = not self._by_digest
        self._anonymous = Tenant("anonymous", None)

    def identify(self, headers: Mapping[str, str]) -> Tenant | None:
        """The tenant whose key the request presents, or ``None`` (answer 401)."""
        if self.open:
            return self._anonymous
        key = _presented_key(headers)
        if not key:
            return None
        wanted = hashlib.sha256(key.encode()).digest()
        found: Tenant | None = None
        for digest, tenant in self._by_digest.items():  # every one, whichever matches
            if hmac.compare_digest(digest, wanted):
                found = tenant
        return found

    def __len__(self) -> int:
        return len(self._by_digest)


def _presented_key(headers: Mapping[str, str]) -> str | None:
    authorization = headers.get("Authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    return headers.get("x-api-key") or headers.get("api-key") or None
