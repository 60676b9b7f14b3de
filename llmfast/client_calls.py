"""The chat calls of a [Client][llmfast.Client]: chat and stream (plain or structured),
extract and the tool loop.

[ClientCalls][llmfast.client_calls.ClientCalls] is the base ``Client`` inherits them
from; ``client.py`` builds the onion and owns the lifecycle.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from llmfast.calls import ChatParams, Prompt, chat_request
from llmfast.errors import ClientClosedError
from llmfast.events import EventHook, call_summary, emit
from llmfast.stream import ChatStream
from llmfast.structured.call import Output, StructuredCompletion, structured_chat
from llmfast.structured.loop import ToolRun, run_tools
from llmfast.structured.stream import StructuredStream
from llmfast.structured.tools import FunctionTool
from llmfast.transport import Request, Response
from llmfast.types import ChatCompletion, MessageLike
from llmfast.usage import with_earlier_usage

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from llmfast.backends.base import Backend
    from llmfast.layers.cache import CacheMode

__all__ = ["ClientCalls"]

_T = TypeVar("_T")


class ClientCalls:
    """The calls every [Client][llmfast.Client] offers (a base class: use ``Client``)."""

    backend: Backend
    model: str | None
    on_event: EventHook | None
    _send: Callable[[Request], Awaitable[Response]]
    _total: float | None
    _closed: bool

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("the client is closed; create a new Client")

    # --- calls -----------------------------------------------------------------

    @overload
    async def chat(
        self,
        prompt: Prompt | None = None,
        /,
        *,
        output: type[_T] | Output[_T],
        messages: Sequence[MessageLike] | None = None,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cache: CacheMode | None = None,
        **params: Unpack[ChatParams],
    ) -> StructuredCompletion[_T]: ...

    @overload
    async def chat(
        self,
        prompt: Prompt | None = None,
        /,
        *,
        output: object,
        messages: Sequence[MessageLike] | None = None,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cache: CacheMode | None = None,
        **params: Unpack[ChatParams],
    ) -> StructuredCompletion[Any]: ...

    @overload
    async def chat(
        self,
        prompt: Prompt,
        /,
        *,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cache: CacheMode | None = None,
        **params: Unpack[ChatParams],
    ) -> ChatCompletion: ...

    @overload
    async def chat(
        self,
        prompt: None = None,
        /,
        *,
        messages: Sequence[MessageLike],
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cache: CacheMode | None = None,
        **params: Unpack[ChatParams],
    ) -> ChatCompletion: ...

    async def chat(
        self,
        prompt: Prompt | None = None,
        /,
        *,
        output: Any = None,
        messages: Sequence[MessageLike] | None = None,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cache: CacheMode | None = None,
        **params: Unpack[ChatParams],
    ) -> ChatCompletion:
        """Send a chat completion and return the whole result.

        ``prompt`` is a string (one user message), a list of messages (typed or
        OpenAI-style dicts) or a ``ChatRequest``; ``messages=[...]`` is the keyword
        form (as in the ``openai`` SDK). An empty list is refused with a
        ``ConfigurationError`` before anything is sent. Keyword parameters are those
        of ``ChatRequest``. ``headers`` apply to this call only; ``timeout`` is this
        call's total deadline in seconds (queueing, retries and fallbacks included),
        overriding ``Timeouts.total``; ``cache`` (``"use"``, ``"refresh"`` or
        ``"bypass"``) steers a ``Cache`` layer for this call. To stream, use
        [`stream`][llmfast.Client.stream] (there is no ``stream=True``).

        With ``output=`` (a type, or an [Output][llmfast.Output] with options) the
        reply is decoded and validated into it, re-asking when it fails; the result is
        a [StructuredCompletion][llmfast.StructuredCompletion] whose ``output`` is the
        object (see ``docs/structured-output.md``).
        """
        if self._closed:
            raise ClientClosedError("the client is closed; create a new Client")
        if output is not None:
            want = Output.of(output)
            return await structured_chat(
                self,
                prompt if messages is None else messages,
                want.spec,
                mode=want.mode,
                max_attempts=want.max_attempts,
                max_total_tokens=want.max_total_tokens,
                timeout=timeout,
                model=model,
                headers=headers,
                cache=cache,
                **params,
            )
        request = Request(
            chat_request(prompt, messages, model, self.model, params, "chat"),
            headers=headers,
            deadline=self._deadline(timeout),
            on_event=self.on_event,
            context=None if cache is None else {"cache": cache},
        )
        if request.on_event is not None:
            observed: ChatCompletion = await self._observed(request)
            return observed
        response = await self._send(request)
        result: ChatCompletion = await response.collect()
        if request.earlier_usage is not None:
            return with_earlier_usage(result, request)
        return result

    @overload
    def stream(
        self,
        prompt: Prompt | None = None,
        /,
        *,
        output: type[_T] | Output[_T],
        messages: Sequence[MessageLike] | None = None,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cache: CacheMode | None = None,
        **params: Unpack[ChatParams],
    ) -> StructuredStream[_T]: ...

    @overload
    def stream(
        self,
        prompt: Prompt | None = None,
        /,
        *,
        output: object,
        messages: Sequence[MessageLike] | None = None,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cache: CacheMode | None = None,
        **params: Unpack[ChatParams],
    ) -> StructuredStream[Any]: ...

    @overload
    def stream(
        self,
        prompt: Prompt,
        /,
        *,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cache: CacheMode | None = None,
        **params: Unpack[ChatParams],
    ) -> ChatStream: ...

    @overload
    def stream(
        self,
        prompt: None = None,
        /,
        *,
        messages: Sequence[MessageLike],
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cache: CacheMode | None = None,
        **params: Unpack[ChatParams],
    ) -> ChatStream: ...

    def stream(
        self,
        prompt: Prompt | None = None,
        /,
        *,
        output: Any = None,
        messages: Sequence[MessageLike] | None = None,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cache: CacheMode | None = None,
        **params: Unpack[ChatParams],
    ) -> ChatStream | StructuredStream[Any]:
        """Stream a chat completion: ``async with client.stream(...) as s:``.

        Takes the arguments of [`chat`][llmfast.Client.chat]. Iterate ``s`` for typed
        chunks or ``s.text_deltas()`` for text; after the end, ``s.completion`` is the
        accumulated result. With ``output=``, a
        [StructuredStream][llmfast.StructuredStream]: ``s.partials()`` yields the
        object as it grows and ``s.output`` is the validated object.
        """
        self._check_open()
        if output is not None:
            want = Output.of(output)
            call: dict[str, Any] = {"model": model, "headers": headers, "cache": cache}
            return StructuredStream(
                self,
                prompt if messages is None else messages,
                want.spec,
                want.mode,
                {**call, "timeout": timeout, **params},
            )
        request = Request(
            chat_request(prompt, messages, model, self.model, params, "stream"),
            stream=True,
            headers=headers,
            deadline=self._deadline(timeout),
            on_event=self.on_event,
            context=None if cache is None else {"cache": cache},
        )
        return ChatStream(self._send, request)

    @overload
    async def extract(
        self,
        prompt: Prompt,
        output: type[_T] | Output[_T],
        /,
        *,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cache: CacheMode | None = None,
        **params: Unpack[ChatParams],
    ) -> _T: ...

    @overload
    async def extract(
        self,
        prompt: Prompt,
        output: object,
        /,
        *,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cache: CacheMode | None = None,
        **params: Unpack[ChatParams],
    ) -> Any: ...

    async def extract(
        self,
        prompt: Prompt,
        output: Any,
        /,
        *,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cache: CacheMode | None = None,
        **params: Unpack[ChatParams],
    ) -> Any:
        """The reply decoded into ``output``: [chat][llmfast.Client.chat] with
        ``output=``, returning just the object."""
        reply = await self.chat(
            prompt,
            output=output,
            model=model,
            headers=headers,
            timeout=timeout,
            cache=cache,
            **params,
        )
        return reply.output

    async def run_tools(
        self,
        prompt: Prompt,
        /,
        tools: Sequence[FunctionTool[Any] | Callable[..., Any]],
        *,
        max_steps: int = 8,
        tool_errors: Literal["report", "raise"] = "report",
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cache: CacheMode | None = None,
        **params: Any,
    ) -> ToolRun:
        """Run the tool loop: call the model, run the tools it asks for (concurrently,
        each within its timeout), send the results back, until it answers without one
        or ``max_steps`` calls were made. ``timeout`` applies to each model call. See
        [run_tools][llmfast.structured.loop.run_tools]."""
        return await run_tools(
            self,
            prompt,
            tools,
            max_steps=max_steps,
            tool_errors=tool_errors,
            model=model,
            headers=headers,
            timeout=timeout,
            cache=cache,
            **params,
        )

    # --- helpers ---------------------------------------------------------------

    async def _observed(self, request: Request) -> Any:
        """Send and collect, reporting the call's ``done`` event (only with a hook)."""
        started = time.monotonic()
        try:
            response = await self._send(request)
            result = await response.collect()
            if request.earlier_usage is not None:
                result = with_earlier_usage(result, request)
        except BaseException as exc:
            emit(request, "done", time.monotonic() - started, **call_summary(request, exc))
            raise
        reasons = tuple(c.finish_reason for c in getattr(result, "choices", ()) if c.finish_reason)
        emit(
            request,
            "done",
            time.monotonic() - started,
            **call_summary(request, None, getattr(result, "usage", None), None, reasons),
        )
        return result

    def _deadline(self, timeout: float | None) -> float | None:
        total = self._total if timeout is None else timeout
        return None if total is None else time.monotonic() + total
