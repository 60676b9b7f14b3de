"""``AsyncOpenAI``: the ``openai`` SDK's async client, over an llmfast
[`Client`][llmfast.Client]."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from llmfast.client import Client
from llmfast.errors import ConfigurationError, LLMFastError
from llmfast.openai import _convert as convert
from llmfast.openai import types as t
from llmfast.openai._config import NOT_GIVEN, NotGiven, Options, build, seconds, split_params
from llmfast.openai._exceptions import facade_error
from llmfast.openai._models import fetch_models
from llmfast.openai._parse import ChatCompletionStreamManager, parse_result, parse_spec
from llmfast.openai._retries import MAX_RETRIES, RetriesLayer
from llmfast.openai._stream import AsyncStream
from llmfast.transport import Layer

__all__ = ["AsyncOpenAI"]


class AsyncOpenAI:
    """The ``openai`` SDK's ``AsyncOpenAI``, running on llmfast.

    Args:
        api_key: default ``$OPENAI_API_KEY``; required, as in the SDK.
        organization: sent as ``OpenAI-Organization`` (default ``$OPENAI_ORG_ID``).
        project: sent as ``OpenAI-Project`` (default ``$OPENAI_PROJECT_ID``).
        base_url: default ``$OPENAI_BASE_URL``, else ``https://api.openai.com/v1``.
        timeout: seconds, the total deadline of each call (retries included); or an
            ``httpx.Timeout``-like object, whose ``connect`` and ``read`` become
            llmfast's connect and read/idle timeouts.
        max_retries: retries of a failed call (default 2: three attempts), by
            llmfast's [`Retry`][llmfast.layers.Retry] layer (``retry-after`` honoured).
        default_headers: headers sent with every request.
        default_query: not supported (raises ``ConfigurationError``).
        layers: llmfast layers, outermost first (cache, rate limits...); the retry
            layer of ``max_retries`` is added innermost unless the list has a ``Retry``.
        client: an llmfast ``Client`` to wrap instead (its layers, backend and
            lifecycle stay its own; ``close()`` leaves it open).
        **client_options: other ``Client`` arguments (``pool=``, ``stats=``,
            ``on_event=``).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        base_url: str | None = None,
        timeout: Any = NOT_GIVEN,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
        default_query: Mapping[str, object] | None = None,
        layers: Sequence[Layer] | None = None,
        client: Client | None = None,
        **client_options: Any,
    ) -> None:
        built = build(
            Client,
            client,
            client_options,
            api_key=api_key,
            organization=organization,
            project=project,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
            default_query=default_query,
            layers=layers,
        )
        self._setup(built.client, built.options, owns=built.owns)

    def _setup(self, client: Client, options: Options, *, owns: bool) -> None:
        self._client = client
        self._options = options
        self._owns = owns
        backend: Any = client.backend
        self.base_url: str = getattr(backend, "base_url", "")
        self._chat_url = self.base_url + "/chat/completions"
        self._embed_url = self.base_url + "/embeddings"
        self.completions_resource = AsyncCompletions(self)
        self.chat = AsyncChat(self.completions_resource)
        self.beta = AsyncBeta(self.chat)
        self.embeddings = AsyncEmbeddings(self)
        self.models = AsyncModels(self)

    @classmethod
    def _over(cls, client: Client, options: Options, owns: bool = False) -> AsyncOpenAI:
        made = cls.__new__(cls)
        made._setup(client, options, owns=owns)
        return made

    @property
    def client(self) -> Client:
        """The llmfast [`Client`][llmfast.Client] underneath (its stats, layers...)."""
        return self._client

    @property
    def timeout(self) -> float | None:
        """The per-call deadline in seconds (``None``: the client's ``Timeouts.total``)."""
        return self._options.timeout

    @property
    def max_retries(self) -> int | None:
        """The retries set by ``with_options`` (``None``: the client's retry layer's)."""
        return self._options.max_retries

    def with_options(
        self,
        *,
        timeout: Any = NOT_GIVEN,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
        **unsupported: Any,
    ) -> AsyncOpenAI:
        """A copy sharing this client's connections, with other per-call defaults."""
        if unsupported:
            raise ConfigurationError(f"with_options() does not support {sorted(unsupported)}")
        options = self._options
        if timeout is not NOT_GIVEN:
            options = dataclasses.replace(options, timeout=seconds(timeout))
        if max_retries is not None:
            if type(max_retries) is not int or max_retries < 0:
                raise ConfigurationError(f"max_retries must be an int >= 0, got {max_retries!r}")
            if self._client.find_layer(RetriesLayer) is None:
                raise ConfigurationError(
                    "with_options(max_retries=) needs the facade's retry layer: this client "
                    "wraps a Client built without it"
                )
            options = dataclasses.replace(options, max_retries=max_retries)
        if default_headers:
            options = dataclasses.replace(
                options, headers={**(options.headers or {}), **default_headers}
            )
        return AsyncOpenAI._over(self._client, options, owns=self._owns)

    copy = with_options

    # --- lifecycle --------------------------------------------------------------------

    async def close(self) -> None:
        """Close the connections (a wrapped ``client=`` is left open)."""
        if self._owns:
            await self._client.aclose()

    def is_closed(self) -> bool:
        """True once the llmfast client is closed."""
        return self._client.closed

    async def __aenter__(self) -> AsyncOpenAI:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<llmfast.openai.AsyncOpenAI {self._client!r}>"

    # --- call plumbing ----------------------------------------------------------------

    def _call(
        self, extra_headers: Mapping[str, str] | None, extra_query: Any, timeout: Any
    ) -> tuple[Mapping[str, str] | None, float | None]:
        if extra_query:
            raise ConfigurationError("llmfast.openai does not support extra_query")
        headers = self._options.headers
        if extra_headers:
            headers = {**headers, **extra_headers} if headers else extra_headers
        if timeout is NOT_GIVEN:
            return headers, self._options.timeout
        return headers, seconds(timeout)


class AsyncCompletions:
    """``client.chat.completions``: ``create``, ``parse`` and ``stream``."""

    def __init__(self, owner: AsyncOpenAI) -> None:
        self._owner = owner

    async def create(
        self,
        *,
        messages: Sequence[Any],
        model: str,
        stream: bool | NotGiven = False,
        stream_options: Mapping[str, Any] | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: Any = NOT_GIVEN,
        **params: Any,
    ) -> Any:
        """A chat completion: a [`ChatCompletion`][llmfast.openai.types.ChatCompletion],
        or with ``stream=True`` an [`AsyncStream`][llmfast.openai.AsyncStream] of
        chunks. Parameters as in the SDK (any it does not type go into the body)."""
        owner = self._owner
        headers, deadline = owner._call(extra_headers, extra_query, timeout)
        call = split_params(params, extra_body)
        retries = owner._options.max_retries
        token = None if retries is None else MAX_RETRIES.set(retries)
        try:
            if stream:
                return await self._stream(messages, model, headers, deadline, call, stream_options)
            result = await owner._client.chat(
                messages=messages, model=model, headers=headers, timeout=deadline, **call
            )
        except LLMFastError as exc:
            raise facade_error(exc, owner._chat_url) from exc.__cause__
        finally:
            if token is not None:
                MAX_RETRIES.reset(token)
        return convert.completion(result)

    async def _stream(
        self,
        messages: Sequence[Any],
        model: str,
        headers: Mapping[str, str] | None,
        deadline: float | None,
        call: dict[str, Any],
        stream_options: Any,
    ) -> AsyncStream:
        include_usage = False
        if isinstance(stream_options, Mapping):
            include_usage = bool(stream_options.get("include_usage"))
            call["extra_body"] = {**call.get("extra_body", {}), "stream_options": stream_options}
        opened = self._owner._client.stream(
            messages=messages, model=model, headers=headers, timeout=deadline, **call
        )
        await opened.start()
        return AsyncStream(opened, include_usage, self._owner._chat_url)

    async def parse(
        self,
        *,
        messages: Sequence[Any],
        model: str,
        response_format: Any = NOT_GIVEN,
        **params: Any,
    ) -> t.ParsedChatCompletion[Any]:
        """``create`` with ``response_format=`` a type (pydantic model, msgspec Struct,
        dataclass, TypedDict...), decoded into ``choices[i].message.parsed`` (``None``
        with a ``refusal``). Raises ``LengthFinishReasonError`` and
        ``ContentFilterFinishReasonError`` as the SDK does."""
        spec, wire = parse_spec(response_format)
        if wire is not NOT_GIVEN:
            params["response_format"] = wire
        result = await self.create(messages=messages, model=model, **params)
        return parse_result(result, spec)

    def stream(
        self,
        *,
        messages: Sequence[Any],
        model: str,
        response_format: Any = NOT_GIVEN,
        **params: Any,
    ) -> ChatCompletionStreamManager:
        """``async with client.chat.completions.stream(...) as stream:`` iterates events
        (``chunk``, ``content.delta``, ``content.done``...); then
        ``await stream.get_final_completion()``."""
        spec, wire = parse_spec(response_format)
        if wire is not NOT_GIVEN:
            params["response_format"] = wire
        opening = self.create(messages=messages, model=model, stream=True, **params)
        return ChatCompletionStreamManager(opening, spec)


class AsyncChat:
    """``client.chat``."""

    def __init__(self, completions: AsyncCompletions) -> None:
        self.completions = completions


class AsyncBeta:
    """``client.beta`` (``client.beta.chat.completions.parse`` of older SDKs)."""

    def __init__(self, chat: AsyncChat) -> None:
        self.chat = chat


class AsyncEmbeddings:
    """``client.embeddings``."""

    def __init__(self, owner: AsyncOpenAI) -> None:
        self._owner = owner

    async def create(
        self,
        *,
        input: Any,
        model: str,
        dimensions: int | NotGiven = NOT_GIVEN,
        encoding_format: str | NotGiven = NOT_GIVEN,
        user: str | NotGiven = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: Any = NOT_GIVEN,
    ) -> t.CreateEmbeddingResponse:
        """Embed ``input`` (a string or a list); a
        [`CreateEmbeddingResponse`][llmfast.openai.types.CreateEmbeddingResponse]."""
        owner = self._owner
        headers, deadline = owner._call(extra_headers, extra_query, timeout)
        fmt = None if isinstance(encoding_format, NotGiven) else encoding_format
        retries = owner._options.max_retries
        token = None if retries is None else MAX_RETRIES.set(retries)
        try:
            result = await owner._client.embed(
                input,
                model=model,
                dimensions=None if isinstance(dimensions, NotGiven) else dimensions,
                encoding_format=fmt,
                user=None if isinstance(user, NotGiven) else user,
                extra_body=extra_body,
                headers=headers,
                timeout=deadline,
            )
        except LLMFastError as exc:
            raise facade_error(exc, owner._embed_url) from exc.__cause__
        finally:
            if token is not None:
                MAX_RETRIES.reset(token)
        return convert.embeddings(result, base64=fmt == "base64")


class AsyncModels:
    """``client.models``."""

    def __init__(self, owner: AsyncOpenAI) -> None:
        self._owner = owner

    def list(self, **options: Any) -> ModelsPager:
        """The models: ``await`` it for a page (``.data``), or ``async for model in ...``."""
        return ModelsPager(self._owner, options)


class ModelsPager:
    """What ``models.list()`` returns: awaitable, and async-iterable."""

    def __init__(self, owner: AsyncOpenAI, options: Mapping[str, Any]) -> None:
        self._owner = owner
        self._options = options

    async def _page(self) -> t.ModelsPage:
        owner = self._owner
        headers, deadline = owner._call(
            self._options.get("extra_headers"),
            self._options.get("extra_query"),
            self._options.get("timeout", NOT_GIVEN),
        )
        return await fetch_models(owner._client, headers, deadline)

    def __await__(self) -> Any:
        return self._page().__await__()

    async def __aiter__(self) -> Any:
        page = await self._page()
        for model in page.data:
            yield model
