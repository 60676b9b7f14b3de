"""The clients the structured-output tests run on: one per backend, over the test server."""

from __future__ import annotations

import llmfast
from llmfast import Client
from llmfast.testing import MockServer

PROVIDERS = ["openai", "anthropic", "ollama", "gemini"]


def client_for(server: MockServer, provider: str) -> Client:
    """A client for ``provider`` on ``server``, with no layers (no default retries)."""
    key = None if provider == "ollama" else "test-key"
    backend = llmfast.backend_for(
        provider, base_url=server.url_for(provider), api_key=key, model="m"
    )
    return Client(backend, layers=[])
