"""A pydantic-ai model that sends through an llmfast [`Client`][llmfast.Client].

``Agent(LLMFastModel(client))`` runs pydantic-ai agents (tools, structured output,
streaming) over any llmfast backend and its layers: retries, rate limits, caches and
coalescing apply to every model request the agent makes.

```python
from pydantic_ai import Agent
import llmfast
from llmfast.integrations.pydantic_ai import LLMFastModel

client = llmfast.Client(model="gpt-4o-mini")
agent = Agent(LLMFastModel(client), instructions="Be brief.")
result = await agent.run("Hello")
```

Install with ``pip install 'llmfast[pydantic-ai]'``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models import (
    Model,
    ModelRequestParameters,
    StreamedResponse,
    check_allow_model_requests,
)
from pydantic_ai.profiles import ModelProfile, ModelProfileSpec
from pydantic_ai.settings import ModelSettings

from llmfast.client import Client
from llmfast.errors import ConfigurationError, LLMFastError
from llmfast.integrations.pydantic_ai._errors import model_error
from llmfast.integrations.pydantic_ai._messages import map_messages
from llmfast.integrations.pydantic_ai._responses import LLMFastStreamedResponse, model_response
from llmfast.integrations.pydantic_ai._settings import (
    LLMFastModelSettings,
    call_options,
    unsupported_for,
)
from llmfast.redact import redact_url

__all__ = ["LLMFastModel", "LLMFastModelSettings", "LLMFastStreamedResponse"]

_NATIVE_OUTPUT = frozenset({"openai", "gemini", "ollama"})
"""Backends whose llmfast backend turns ``response_format`` ``json_schema`` into the
provider's own structured output (Anthropic's is asked for with a forced tool)."""


def _base_profile(kind: str) -> ModelProfile:
    profile = ModelProfile(
        supports_tools=True,
        supports_json_schema_output=kind in _NATIVE_OUTPUT,
        supports_json_object_output=kind == "openai",
    )
    if kind == "ollama":  # no tool_choice there: a forced output tool cannot be forced
        profile["default_structured_output_mode"] = "native"
    return profile


class LLMFastModel(Model):
    """A pydantic-ai `Model` backed by an llmfast client.

    Args:
        client: the [`Client`][llmfast.Client] to send through (any backend, any layers).
            The model does not close it: close the client when done.
        model_name: the model to ask for; default the client's ``model``.
        settings: default pydantic-ai model settings for every request.
        profile: overrides for the model profile. By default tools are on, and native
            structured output (``NativeOutput``) is on for the OpenAI-compatible, Gemini
            and Ollama backends, which send it as the provider's JSON-schema mode.
    """

    def __init__(
        self,
        client: Client,
        model_name: str | None = None,
        *,
        settings: ModelSettings | None = None,
        profile: ModelProfileSpec | None = None,
    ) -> None:
        name = model_name or client.model
        if not name:
            raise ConfigurationError(
                "LLMFastModel needs a model name: pass model_name=... or Client(model=...)"
            )
        self.client = client
        self._model_name = name
        self._kind = str(getattr(client.backend, "kind", "openai"))
        base_url = getattr(client.backend, "base_url", None)
        self._base_url = redact_url(base_url) if isinstance(base_url, str) else None
        base = _base_profile(self._kind)
        if profile is None or isinstance(profile, Mapping):
            profile = ModelProfile(**{**base, **(profile or {})})
        super().__init__(settings=settings, profile=profile)

    @property
    def model_name(self) -> str:
        """The model asked for."""
        return self._model_name

    @property
    def system(self) -> str:
        """The llmfast backend's kind: ``openai``, ``anthropic``, ``ollama``, ``gemini``..."""
        return self._kind

    @property
    def base_url(self) -> str | None:
        """The backend's base URL, with any credentials in it masked."""
        return self._base_url

    def _unsupported_settings(self) -> frozenset[str]:
        return frozenset(super()._unsupported_settings()) | unsupported_for(self._kind)

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        """Send one model request with ``client.chat``."""
        check_allow_model_requests()
        model_settings, params = self.prepare_request(model_settings, model_request_parameters)
        wire, options = self._call(messages, model_settings, params)
        try:
            completion = await self.client.chat(messages=wire, model=self._model_name, **options)
        except LLMFastError as exc:
            raise model_error(exc, self._model_name) from exc
        return model_response(completion, self._model_name, self._kind, self._base_url)

    @asynccontextmanager
    async def request_stream(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
        run_context: Any = None,
    ) -> AsyncIterator[StreamedResponse]:
        """Stream one model request with ``client.stream``; the connection is released
        when the context exits."""
        check_allow_model_requests()
        model_settings, params = self.prepare_request(model_settings, model_request_parameters)
        wire, options = self._call(messages, model_settings, params)
        stream = self.client.stream(messages=wire, model=self._model_name, **options)
        try:
            try:
                await stream.start()
            except LLMFastError as exc:
                raise model_error(exc, self._model_name) from exc
            yield LLMFastStreamedResponse(
                model_request_parameters=params,
                _stream=stream,
                _model_name=self._model_name,
                _provider_name=self._kind,
                _provider_url=self._base_url,
            )
        finally:
            await stream.aclose()

    def _call(
        self,
        messages: list[ModelMessage],
        settings: ModelSettings | None,
        params: ModelRequestParameters,
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The messages and keyword arguments of the llmfast call."""
        instructions = _instructions(self, messages, params)
        return map_messages(messages, instructions), call_options(
            self._kind, settings or {}, params, self.profile
        )


def _instructions(
    model: Model, messages: list[ModelMessage], params: ModelRequestParameters
) -> list[str]:
    """The request's instructions, as pydantic-ai resolves them for its own adapters."""
    parts = getattr(model, "_get_instruction_parts", None)
    if parts is not None:
        return [part.content for part in parts(messages, params) or ()]
    legacy = getattr(model, "_get_instructions", None)  # older pydantic-ai
    if legacy is None:
        raise UserError("this pydantic-ai release is not supported by LLMFastModel")
    try:
        text = legacy(messages, params)
    except TypeError:
        text = legacy(messages)
    return [text] if text else []
