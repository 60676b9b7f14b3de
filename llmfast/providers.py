"""Choosing a backend by provider name: ``backend_for("anthropic")``.

A provider is named on its own (``"openai"``, ``"openai-responses"`` (OpenAI's
Responses API), ``"anthropic"``, ``"ollama"``, ``"gemini"``; ``"google"`` is an alias of
``"gemini"``) or with a default model after
a colon, ``"<provider>:<model>"``: everything after the *first* colon is the model, so
``"ollama:llama3.2:1b"`` is Ollama with the model ``llama3.2:1b``.

Keys and base URLs come from each provider's usual environment variables when not
given:

==========  ==================================  =========================================
provider    key                                 base URL
==========  ==================================  =========================================
openai      ``OPENAI_API_KEY``                  ``LLMFAST_BASE_URL``, ``OPENAI_BASE_URL``
openai-     ``OPENAI_API_KEY``                  ``LLMFAST_BASE_URL``, ``OPENAI_BASE_URL``
responses
anthropic   ``ANTHROPIC_API_KEY``               ``ANTHROPIC_BASE_URL``
ollama      (none)                              ``OLLAMA_HOST``
gemini      ``GEMINI_API_KEY``, ``GOOGLE_API_KEY``  (the public endpoint)
==========  ==================================  =========================================

With no provider at all, ``$LLMFAST_PROVIDER`` is used, else ``"openai"``.

A provider that needs a key and has none (neither given nor in its variables) raises
[`MissingCredentialsError`][llmfast.errors.MissingCredentialsError] here, before any
request, unless the base URL is local or credentials come another way (see
``llmfast.credentials``; ``api_key=""`` says "this server needs no key").
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from llmfast.backends.base import Backend
from llmfast.credentials import check_credentials
from llmfast.errors import ConfigurationError
from llmfast.redact import redact_url

__all__ = ["PROVIDERS", "backend_for", "parse_provider"]

PROVIDERS = ("openai", "openai-responses", "anthropic", "ollama", "gemini")
"""The provider names [`backend_for`][llmfast.backend_for] accepts (plus the alias ``google``)."""

_ALIASES = {"google": "gemini"}


def parse_provider(spec: str) -> tuple[str, str | None]:
    """``"anthropic:claude-3-5-haiku-latest"`` → ``("anthropic", "claude-3-5-haiku-latest")``."""
    name, sep, model = spec.partition(":")
    name = name.strip().lower()
    name = _ALIASES.get(name, name)
    if name not in PROVIDERS:
        raise ConfigurationError(
            f"unknown provider {name!r} in {spec!r}: expected one of {', '.join(PROVIDERS)}"
            " (optionally followed by :<model>)"
        )
    if sep and not model:
        raise ConfigurationError(f"no model after the colon in {spec!r}")
    return name, model or None


def backend_for(
    provider: str | None = None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    model: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Backend:
    """A backend for ``provider`` (``"anthropic"``, or ``"anthropic:<model>"``...).

    ``model`` may be given here or in ``provider``, not both differently. Keys and
    base URLs default to the provider's environment variables (see the module doc).
    Raises ``MissingCredentialsError`` when a key is needed and there is none.
    """
    name, named_model = parse_provider(provider or os.environ.get("LLMFAST_PROVIDER") or "openai")
    if named_model is not None and model is not None and model != named_model:
        raise ConfigurationError(
            f"two models given: {named_model!r} in the provider and {model!r} as model="
        )
    model = model or named_model
    if name == "anthropic":
        from llmfast.backends.anthropic import DEFAULT_BASE_URL, AnthropicBackend

        url = _checked(base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL)
        check_credentials(name, url, api_key, headers)
        return AnthropicBackend(url, api_key=api_key, model=model, headers=headers)
    if name == "ollama":
        from llmfast.backends.ollama import OllamaBackend, ollama_host

        if api_key is not None:
            raise ConfigurationError("ollama takes no api_key (put auth for a proxy in headers)")
        url = ollama_host(base_url) if base_url is None else _checked(base_url)
        return OllamaBackend(url, model=model, headers=headers)
    if name == "gemini":
        from llmfast.backends.gemini import DEFAULT_BASE_URL as GEMINI_URL
        from llmfast.backends.gemini import GeminiBackend

        url = _checked(base_url or GEMINI_URL)
        check_credentials(name, url, api_key, headers)
        return GeminiBackend(url, api_key=api_key, model=model, headers=headers)
    from llmfast.backends.openai import DEFAULT_BASE_URL as OPENAI_URL
    from llmfast.backends.openai import OpenAIBackend

    url = _checked(
        base_url
        or os.environ.get("LLMFAST_BASE_URL")
        or os.environ.get("OPENAI_BASE_URL")
        or OPENAI_URL
    )
    check_credentials(name, url, api_key, headers)
    key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
    if name == "openai-responses":
        from llmfast.backends.openai_responses import OpenAIResponsesBackend

        return OpenAIResponsesBackend(url, api_key=key, model=model, headers=headers)
    return OpenAIBackend(url, api_key=key, model=model, headers=headers)


def _checked(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        shown = redact_url(url)
        raise ConfigurationError(f"base_url must start with http:// or https://: {shown!r}")
    return url
