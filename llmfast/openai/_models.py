"""``client.models.list()``: ``GET {base_url}/models`` over the client's pooled session
(a listing, not a model call: it skips the layers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
import msgspec

from llmfast.backends._http import decode_error_body
from llmfast.client import Client
from llmfast.errors import ConfigurationError, DecodeError, LLMFastError
from llmfast.openai._exceptions import facade_error
from llmfast.openai.types import ModelsPage
from llmfast.pool import map_transport_error

__all__ = ["fetch_models"]

_decode_page = msgspec.json.Decoder(ModelsPage).decode


async def fetch_models(
    client: Client, headers: Mapping[str, str] | None, timeout: float | None
) -> ModelsPage:
    """The server's model list; errors as the facade's."""
    backend: Any = client.backend
    if not hasattr(backend, "status_error") or not hasattr(backend, "pool"):
        raise ConfigurationError("models.list() needs an OpenAI-compatible HTTP backend")
    url = backend.base_url + "/models"
    defaults = getattr(backend, "_extra_headers", None) or {}
    sent = {**defaults, **backend.auth_headers(), **(headers or {})}
    limit = None if timeout is None else aiohttp.ClientTimeout(total=timeout)
    try:
        try:
            async with backend.pool.session.get(url, headers=sent, timeout=limit) as resp:
                raw = await resp.read()
                status, got = resp.status, resp.headers
        except LLMFastError:
            raise
        except Exception as exc:
            raise map_transport_error(exc, f"GET {url}") from exc
        if status >= 400:
            raise backend.status_error(status, decode_error_body(raw), got)
        try:
            return _decode_page(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise DecodeError(f"malformed model list: {exc}") from exc
    except LLMFastError as exc:
        error: Any = facade_error(exc, url)
        if error.request is not None:
            error.request.method = "GET"
        raise error from exc.__cause__
