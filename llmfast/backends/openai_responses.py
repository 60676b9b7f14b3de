"""The OpenAI Responses API backend: ``POST /v1/responses``, whole, streamed or in the
background, with streams that resume instead of failing.

``Client(provider="openai-responses")`` (or ``"openai-responses:<model>"``) builds it.
Requests are mapped from the common ``ChatRequest`` (``_responses_request``), results
and stream events to the common completion and chunk types (``_responses_wire``,
``_responses_stream``); the
whole response object stays on the completion as ``native`` (output items, reasoning
items with their ``encrypted_content``, the response id).

A stream whose connection drops is re-attached to the same response from the last
``sequence_number`` seen (``_responses_resume``), below the retry layer's commit point:
the layers above see one unbroken stream. A background request that is not streamed is
polled to completion. See ``docs/backends/openai-responses.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from llmfast.backends._convert import ENCODE
from llmfast.backends._http import ChunkStream, url
from llmfast.backends._respond import JSONBackend, respond
from llmfast.backends._responses_request import wire_body
from llmfast.backends._responses_resume import resumable
from llmfast.backends._responses_stream import ResponsesStreamParser
from llmfast.backends._responses_wire import PROVIDER, TERMINAL, completion_from
from llmfast.backends.openai import version_hint
from llmfast.errors import (
    APIStatusError,
    DeadlineExceeded,
    UnsupportedParameterError,
)
from llmfast.events import emit
from llmfast.pool import map_transport_error
from llmfast.transport import Request, Response
from llmfast.types import (
    ChatCompletion,
    ChatRequest,
    EmbeddingRequest,
    EmbeddingResponse,
)

__all__ = ["DEFAULT_BASE_URL", "OpenAIResponsesBackend", "output_items"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_STREAM_SUFFIX = b',"stream":true}'
_CANCEL_TIMEOUT = 10.0


def output_items(completion: ChatCompletion) -> list[dict[str, Any]]:
    """The output items of a Responses completion, to put in the next request's
    ``messages`` (stateless multi-turn: reasoning items with their
    ``encrypted_content``, function calls and messages, as the server sent them)."""
    native = completion.native or {}
    output = native.get("output")
    return [item for item in output if isinstance(item, dict)] if isinstance(output, list) else []


class OpenAIResponsesBackend(JSONBackend):
    """Backend for OpenAI's Responses API (and the servers that copy it).

    Args:
        base_url: the API root including the version (default ``https://api.openai.com/v1``).
        api_key: sent as ``Authorization: Bearer``; never shown.
        model: the default model for calls that name none.
        headers: extra headers for every request.
        organization: sent as ``OpenAI-Organization``.
        project: sent as ``OpenAI-Project``.
        resume: re-attach a dropped stream to its response (``False``: a drop fails).
        max_resumes: how many times one stream may re-attach.
        poll_interval: seconds between two polls of a background response.
        cancel_on_close: cancel a background response on the server when the caller
            leaves its stream (or a poll) before the end.
    """

    kind = PROVIDER

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        organization: str | None = None,
        project: str | None = None,
        resume: bool = True,
        max_resumes: int = 3,
        poll_interval: float = 1.0,
        cancel_on_close: bool = True,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        auth: dict[str, str] = {}
        if key:
            auth["Authorization"] = f"Bearer {key}"
        if organization:
            auth["OpenAI-Organization"] = organization
        if project:
            auth["OpenAI-Project"] = project
        super().__init__(base_url=base_url, model=model, headers=headers, auth=auth)
        if max_resumes < 0 or poll_interval < 0:
            raise ValueError("max_resumes and poll_interval must not be negative")
        self.resume = resume
        self.max_resumes = max_resumes
        self.poll_interval = poll_interval
        self.cancel_on_close = cancel_on_close
        self._responses_url = url(self.base_url + "/responses")
        self._not_found_hint = version_hint(self.base_url)
        self._cancels: set[asyncio.Task[None]] = set()

    # -- the wire format --------------------------------------------------------------

    def chat_call(self, body: ChatRequest, stream: bool) -> tuple[Any, bytes]:
        data = ENCODE(wire_body(body))
        return self._responses_url, data[:-1] + _STREAM_SUFFIX if stream else data

    def embed_call(self, body: EmbeddingRequest) -> tuple[Any, bytes]:
        raise UnsupportedParameterError(
            "embeddings", PROVIDER, "use the OpenAI backend (provider='openai') for embeddings"
        )

    def decode_chat(self, raw: bytes) -> ChatCompletion:
        return completion_from(raw)

    def decode_embeddings(self, raw: bytes, body: EmbeddingRequest) -> EmbeddingResponse:
        raise AssertionError("unreachable: embed_call raises")  # pragma: no cover

    def stream_parser(self) -> ResponsesStreamParser:
        return ResponsesStreamParser(self.pool.config.max_event_bytes)

    def status_error(self, status: int, body: Any, headers: Mapping[str, str]) -> APIStatusError:
        error = super().status_error(status, body, headers)
        if self._not_found_hint is not None and status == 404:
            error.args = (f"{error}; {self._not_found_hint}",)
        return error

    # -- sending ----------------------------------------------------------------------

    async def send(self, request: Request, /) -> Response:
        body = request.body
        if type(body) is not ChatRequest:
            assert isinstance(body, EmbeddingRequest)
            self.embed_call(body)
        assert isinstance(body, ChatRequest)
        stream = request.stream
        target, data = self.chat_call(body, stream)
        headers = self._headers if request.headers is None else {**self._headers, **request.headers}
        resp = await self.post(request, target, data, headers)
        if not stream:
            response = await respond(self, request, resp, False)
            result = response.result
            if isinstance(result, ChatCompletion) and _running(result):
                result = await self._poll(request, result.id)
                status, answered = response.status, response.headers
                return Response(request, status=status, headers=answered, result=result)
            return response
        parser = self.stream_parser()
        response = await respond(self, request, resp, True, parser)
        if not self.resume:
            return response
        chunks = ChunkStream(
            resumable(
                response._chunks,
                parser,
                lambda p, exc, n: self._reattach(request, p, exc, n),
                self._cancel_later,
                attempts=self.max_resumes,
                deadline=request.deadline,
            )
        )
        return Response(request, status=response.status, headers=response.headers, chunks=chunks)

    async def _get(self, request: Request, target: Any) -> aiohttp.ClientResponse:
        """GET ``target`` within the call's deadline; aiohttp failures become llmfast errors."""
        pool = self.pool
        headers = self._headers if request.headers is None else {**self._headers, **request.headers}
        deadline = request.deadline
        try:
            if deadline is None:
                return await pool.session.get(target, headers=headers)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceeded("the call's deadline passed")
            timeout = pool.call_timeout(remaining)
            return await pool.session.get(target, headers=headers, timeout=timeout)
        except Exception as exc:
            raise map_transport_error(exc, f"GET {target}", deadline) from exc

    async def _reattach(
        self, request: Request, parser: ResponsesStreamParser, drop: BaseException, n: int
    ) -> Any:
        """The rest of ``parser``'s response on a new connection (reported as a
        ``resume`` event: the response id, the sequence number, the drop's class)."""
        if request.on_event is not None:
            emit(
                request,
                "resume",
                resume=n,
                response_id=parser.response_id,
                sequence_number=parser.last_sequence,
                reason=type(drop).__name__,
            )
        target = self._responses_url / parser.response_id
        target = target.with_query(stream="true", starting_after=str(parser.last_sequence))
        resp = await self._get(request, target)
        parser.reattach()
        response = await respond(self, request, resp, True, parser)
        return response._chunks

    async def _poll(self, request: Request, response_id: str) -> ChatCompletion:
        """Poll a background response until it ends (cancelled on the server when the
        caller is cancelled meanwhile)."""
        target = self._responses_url / response_id
        try:
            while True:
                await asyncio.sleep(self.poll_interval)
                resp = await self._get(request, target)
                result = (await respond(self, request, resp, False)).result
                assert isinstance(result, ChatCompletion)
                if not _running(result):
                    return result
        except asyncio.CancelledError:
            self._cancel_later(response_id)
            raise

    async def retrieve(self, response_id: str) -> ChatCompletion:
        """The response ``response_id`` as it stands (``GET /responses/{id}``)."""
        request = Request(ChatRequest(model=self.model or "", messages=()))
        resp = await self._get(request, self._responses_url / response_id)
        result = (await respond(self, request, resp, False)).result
        assert isinstance(result, ChatCompletion)
        return result

    async def cancel(self, response_id: str) -> None:
        """Cancel the background response ``response_id`` (``POST /responses/{id}/cancel``)."""
        request = Request(ChatRequest(model=self.model or "", messages=()))
        deadline = time.monotonic() + _CANCEL_TIMEOUT
        request.deadline = deadline
        target = self._responses_url / response_id / "cancel"
        resp = await self.post(request, target, b"{}", self._headers)
        await respond(self, request, resp, False)

    def _cancel_later(self, response_id: str) -> None:
        if not self.cancel_on_close:
            return
        task = asyncio.get_running_loop().create_task(self._cancel_quietly(response_id))
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)

    async def _cancel_quietly(self, response_id: str) -> None:
        with contextlib.suppress(Exception):  # best effort: the caller has already left
            await self.cancel(response_id)

    async def aclose(self) -> None:
        """Wait for the cancellations still being sent, then close as every backend."""
        if self._cancels:
            await asyncio.wait(set(self._cancels), timeout=_CANCEL_TIMEOUT)
        await super().aclose()


def _running(result: ChatCompletion) -> bool:
    native = result.native
    return native is not None and native.get("status") not in TERMINAL
