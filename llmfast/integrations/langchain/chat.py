"""``ChatLLMFast``: a LangChain chat model whose calls are llmfast calls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, cast

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.language_models.model_profile import ModelProfile
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr, model_validator
from typing_extensions import Self

from llmfast.calls import ChatParams
from llmfast.errors import DecodeError
from llmfast.redact import redact_url
from llmfast.sync import SyncClient
from llmfast.types import ChatCompletion

from ._clients import Clients, connect
from .messages import ai_message, chunk_message, response_metadata, to_llmfast, usage_metadata
from .structured import Method, structured_binding
from .tools import to_tool_choice, to_tools

__all__ = ["ChatLLMFast"]

_PARAMS = frozenset(ChatParams.__annotations__)
_CALL = frozenset({"model", "timeout", "headers", "cache"})
_NOT_SENT = frozenset({"stream", "ls_structured_output_format"})  # LangChain's own
_PROFILE = {  # the keys this langchain-core knows (it warns about others)
    key: True
    for key in (
        "text_inputs",
        "text_outputs",
        "tool_calling",
        "tool_choice",
        "tool_call_streaming",
        "structured_output",
    )
    if key in ModelProfile.__annotations__
}


class ChatLLMFast(BaseChatModel):
    """A LangChain chat model on llmfast: ``ChatLLMFast(model="gpt-4o-mini")``, or
    ``ChatLLMFast(client=llmfast.Client(...))`` for a client you configured (layers,
    pool, hooks...).

    Every provider llmfast speaks works (``provider="anthropic"``, ``"gemini"``,
    ``"ollama"``, or any OpenAI-compatible ``base_url``), through every layer of the
    client (retries, rate limits, cache, coalescing...). Async calls run on an async
    [Client][llmfast.Client] made for the running event loop; blocking ones on a
    [SyncClient][llmfast.SyncClient]. A ``client=`` you pass is used as it is and
    never closed: an async ``Client`` serves ``ainvoke``/``astream``/``abatch``, a
    ``SyncClient`` ``invoke``/``stream``/``batch`` (and the async ones on a thread).

    Per-call keywords (``model.invoke(..., **kw)`` or ``.bind(**kw)``): any
    ``ChatRequest`` parameter (``top_p``, ``seed``, ``response_format``...), llmfast's
    ``model``, ``timeout``, ``headers`` and ``cache``; anything else is sent in the
    request body (``extra_body``).
    """

    model_config = ConfigDict(populate_by_name=True, protected_namespaces=(), extra="forbid")

    client: Any = Field(default=None, exclude=True, repr=False)
    """An llmfast ``Client`` or ``SyncClient`` to call through (instead of the settings below)."""
    model: str | None = None
    """The model (default: the client's, or ``$LLMFAST_MODEL``); ``model_name=`` works too."""
    provider: str | None = None
    """``"openai"`` (default), ``"anthropic"``, ``"gemini"``, ``"ollama"``; or
    ``"anthropic:<model>"``."""
    base_url: str | None = None
    """The API root (default: the provider's, or ``$LLMFAST_BASE_URL``/``$OPENAI_BASE_URL``)."""
    api_key: SecretStr | None = None
    """The key (default: the provider's variable, e.g. ``$OPENAI_API_KEY``); never shown."""
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    n: int | None = None
    """Choices per call (``invoke`` returns the first; ``generate`` gives all)."""
    reasoning_effort: str | None = None
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    timeout: float | None = None
    """Each call's total deadline in seconds, retries included (llmfast's ``timeout=``)."""
    max_retries: int | None = None
    """Retries of llmfast's default layers (``Client(max_retries=...)``; default 2)."""
    default_headers: dict[str, str] | None = None
    layers: list[Any] | None = Field(default=None, exclude=True)
    """llmfast layers, outermost first (``Client(layers=...)``)."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """More request parameters for every call (unknown ones go to ``extra_body``)."""
    streaming: bool = False
    """Stream even for ``invoke`` (and report tokens to callbacks as they arrive)."""

    _clients: Clients = PrivateAttr()

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name == "base_url" and value else value

    _params: dict[str, Any] = PrivateAttr()
    _kind: str | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _llmfast_aliases(cls, values: Any) -> Any:
        if isinstance(values, dict) and "model_name" in values and "model" not in values:
            values = dict(values)
            values["model"] = values.pop("model_name")
        return values

    @model_validator(mode="after")
    def _llmfast_connect(self) -> Self:
        self._clients, self._kind = connect(self)
        self._params = _defaults(self)
        return self

    # --- identity -------------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "llmfast-chat"

    @property
    def provider_kind(self) -> str:
        """The wire format the calls speak: ``openai``, ``anthropic``, ``gemini``, ``ollama``."""
        if self._kind is None:
            given = self.client
            backend = (given.client if isinstance(given, SyncClient) else given).backend
            self._kind = backend.kind
        return self._kind

    @property
    def model_name(self) -> str:
        """The default model's name (``""`` when none is set: each call must name one)."""
        if self.model is not None:
            return self.model
        given = self.client
        return (given.model if given is not None else None) or ""

    @property
    def _identifying_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.model_name, "provider": self.provider_kind}
        if self.base_url is not None:
            params["base_url"] = redact_url(self.base_url)
        params.update(self._params)
        return params

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider=self.provider_kind,
            ls_model_name=kwargs.get("model") or self.model_name,
            ls_model_type="chat",
        )
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        stops = stop or kwargs.get("stop") or self.stop
        if stops:
            params["ls_stop"] = [stops] if isinstance(stops, str) else list(stops)
        return params

    def _resolve_model_profile(self) -> ModelProfile | None:
        """What any model reached through llmfast can be asked for; pass ``profile=``
        for a particular model's limits and modalities."""
        return cast("ModelProfile", dict(_PROFILE))

    # --- calls ----------------------------------------------------------------------

    def _call(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        call = dict(self._params)
        if stop is not None:
            if stop:
                call["stop"] = stop
            else:
                call.pop("stop", None)
        extra: dict[str, Any] | None = None
        for name, value in kwargs.items():
            if value is None or name in _NOT_SENT:
                continue
            if name in _PARAMS or name in _CALL:
                call[name] = value
            else:
                extra = {**call.get("extra_body", {})} if extra is None else extra
                extra[name] = value
        if extra is not None:
            call["extra_body"] = extra
        call["messages"] = to_llmfast(messages)
        return call

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        completion = self._clients.sync_client().chat(**self._call(messages, stop, kwargs))
        return _result(completion)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if not self._clients.has_async:
            return await super()._agenerate(messages, stop, run_manager, **kwargs)
        client = await self._clients.client()
        completion = await client.chat(**self._call(messages, stop, kwargs))
        return _result(completion)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        call = self._call(messages, stop, kwargs)
        with self._clients.sync_client().stream(**call) as stream:
            for chunk in stream:
                message = chunk_message(chunk)
                if message is not None:
                    generation = ChatGenerationChunk(message=message)
                    if run_manager is not None:
                        run_manager.on_llm_new_token(generation.text, chunk=generation)
                    yield generation
            completion = stream.completion
        yield _last(completion, call.get("model") or self.model_name)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        if not self._clients.has_async:
            async for generation in super()._astream(messages, stop, run_manager, **kwargs):
                yield generation
            return
        call = self._call(messages, stop, kwargs)
        client = await self._clients.client()
        async with client.stream(**call) as stream:
            async for chunk in stream:
                message = chunk_message(chunk)
                if message is not None:
                    generation = ChatGenerationChunk(message=message)
                    if run_manager is not None:
                        await run_manager.on_llm_new_token(generation.text, chunk=generation)
                    yield generation
            completion = stream.completion
        yield _last(completion, call.get("model") or self.model_name)

    # --- tools and structured output -----------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: Any = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[Any, AIMessageChunk]:
        """Offer ``tools`` (LangChain tools, pydantic models, functions, tool dicts,
        llmfast ``@tool`` functions) to the model; ``tool_choice`` is ``"auto"``,
        ``"none"``, ``"any"``/``"required"``, a tool's name or ``True`` (the only tool)."""
        converted = to_tools(tools, strict=strict)
        choice = to_tool_choice(tool_choice, converted)
        if choice is not None:
            kwargs["tool_choice"] = choice
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        return self.bind(tools=converted, **kwargs)  # type: ignore[return-value]

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        method: Method = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[Any, Any]:
        """A runnable answering with ``schema`` (a pydantic model, TypedDict, JSON Schema
        or any type llmfast's ``output=`` takes), asked for the llmfast way: see
        [llmfast.integrations.langchain.structured][]."""
        if kwargs:
            raise ValueError(f"unsupported arguments: {sorted(kwargs)}")
        return structured_binding(
            self,
            schema,
            method=method,
            include_raw=include_raw,
            strict=strict,
            backend_kind=self.provider_kind,
        )

    # --- lifecycle ------------------------------------------------------------------

    def close(self) -> None:
        """Close the blocking client this model made (a ``client=`` you gave is kept)."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close the async client this model made for the running loop (otherwise closed
        when the loop shuts down)."""
        await self._clients.aclose()


def _defaults(model: ChatLLMFast) -> dict[str, Any]:
    """Every call's parameters, worked out once."""
    params: dict[str, Any] = {}
    for name in ("temperature", "max_tokens", "top_p", "n", "reasoning_effort", "timeout"):
        value = getattr(model, name)
        if value is not None:
            params[name] = value
    if model.stop:
        params["stop"] = list(model.stop)
    extra: dict[str, Any] = {}
    for name, value in model.model_kwargs.items():
        if name in _PARAMS or name in _CALL:
            params[name] = value
        else:
            extra[name] = value
    if extra:
        params["extra_body"] = {**params.get("extra_body", {}), **extra}
    return params


def _result(completion: ChatCompletion) -> ChatResult:
    if not completion.choices:
        raise DecodeError("the reply has no choices")
    generations = []
    for choice in completion.choices:
        info: dict[str, Any] = {"finish_reason": choice.finish_reason}
        generations.append(
            ChatGeneration(message=ai_message(completion, choice), generation_info=info)
        )
    output: dict[str, Any] = {"model_name": completion.model}
    if completion.usage is not None:
        output["token_usage"] = generations[0].message.response_metadata["token_usage"]
    if completion.system_fingerprint is not None:
        output["system_fingerprint"] = completion.system_fingerprint
    return ChatResult(generations=generations, llm_output=output)


def _last(completion: ChatCompletion, model: str) -> ChatGenerationChunk:
    """The stream's last chunk: finish reason, model, usage (once, so sums stay right)."""
    finish = completion.finish_reason
    usage = completion.usage
    message = AIMessageChunk(
        content="",
        usage_metadata=None if usage is None else usage_metadata(usage),
        response_metadata=response_metadata(completion.model or model, finish, completion),
        chunk_position="last",
        id=completion.id or None,
    )
    return ChatGenerationChunk(message=message, generation_info={"finish_reason": finish})
