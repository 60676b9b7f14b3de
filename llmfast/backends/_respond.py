"""Taking a response in, for every HTTP backend, and the base of the JSON backends.

`respond` takes every backend's response in through its decoding hooks (on
[`HTTPBackend`][llmfast.HTTPBackend]): error statuses and error bodies become
``llmfast.errors``, whole bodies are read bounded (``PoolConfig.max_body_bytes``) and
decoded (any decoding failure a ``DecodeError``), and a stream request's answer is
checked for its content type before it is streamed (see ``_intake``). `JSONBackend`
posts a request body built by the subclass (Anthropic, Ollama, Gemini); subclasses
implement the wire format only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from llmfast.backends import _intake
from llmfast.backends._http import (
    StreamParser,
    as_decode_error,
    decode_error_body,
    read_stream,
)
from llmfast.backends._intake import ErrorBody, media_type, read_body
from llmfast.backends.base import HTTPBackend
from llmfast.backends.watchdog import StreamWatchdog
from llmfast.errors import APIStatusError, DecodeError, LLMFastError, error_for_status
from llmfast.transport import Request, Response
from llmfast.types import ChatCompletionChunk, ChatRequest, EmbeddingRequest

if TYPE_CHECKING:
    import aiohttp

__all__ = ["JSONBackend", "respond"]

_T = TypeVar("_T")


class JSONBackend(HTTPBackend):
    """Base of backends that post JSON and read JSON, SSE or NDJSON back.

    Subclasses set ``kind`` and ``request_id_header`` and implement `chat_call`,
    `embed_call`, `decode_chat`, `decode_embeddings` and
    `stream_parser`; `status_error` may adapt the provider's error body.
    """

    kind = "json"
    request_id_header = "x-request-id"

    def __init__(
        self,
        *,
        base_url: str,
        model: str | None,
        headers: Mapping[str, str] | None,
        auth: Mapping[str, str],
    ) -> None:
        super().__init__(base_url=base_url, model=model, headers=headers)
        self._auth = dict(auth)
        self._headers = {"Content-Type": "application/json", **self._extra_headers, **self._auth}

    def auth_headers(self) -> Mapping[str, str]:
        return self._auth

    # -- the wire format (subclasses; decoding hooks on HTTPBackend) ---------------------

    def chat_call(self, body: ChatRequest, stream: bool) -> tuple[Any, bytes]:
        """The URL and JSON body of a chat request."""
        raise NotImplementedError

    def embed_call(self, body: EmbeddingRequest) -> tuple[Any, bytes]:
        """The URL and JSON body of an embeddings request."""
        raise NotImplementedError

    # -- sending ------------------------------------------------------------------------

    async def send(self, request: Request, /) -> Response:
        body = request.body
        if type(body) is ChatRequest:
            stream = request.stream
            target, data = self.chat_call(body, stream)
        else:
            assert isinstance(body, EmbeddingRequest)
            stream = False
            target, data = self.embed_call(body)
        headers = self._headers if request.headers is None else {**self._headers, **request.headers}
        resp = await self.post(request, target, data, headers)
        return await respond(self, request, resp, stream)


async def respond(
    backend: HTTPBackend,
    request: Request,
    resp: aiohttp.ClientResponse,
    stream: bool,
    parser: StreamParser | None = None,
) -> Response:
    """Take ``resp`` in through ``backend``'s decoding hooks (see the module docstring).

    A stream is read by ``parser`` when given (a backend that keeps the parser's state,
    to resume a dropped stream), else by a new ``backend.stream_parser()``. Closes the
    connection on any failure; releases it once a whole body is read.
    """
    try:
        if resp.status >= 300:
            raise await _status_error(backend, resp, request.deadline)
        if stream:
            media = media_type(resp)
            chunks: AsyncIterator[ChatCompletionChunk]
            if media in backend.stream_types:  # the usual case
                watchdog = backend.watch(request, resp)
                parser = parser or backend.stream_parser()
                chunks = read_stream(resp, parser, watchdog, request.deadline)
            else:
                chunks = await _not_a_stream(backend, request, resp, media, parser)
            return Response(request, status=resp.status, headers=resp.headers, chunks=chunks)
        raw = await read_body(resp, backend.pool.config.max_body_bytes, request.deadline)
    except BaseException:
        resp.close()
        raise
    resp.release()
    body = request.body
    if type(body) is ChatRequest:
        result: Any = _decoded(backend, resp, backend.decode_chat, raw)
    else:
        assert isinstance(body, EmbeddingRequest)
        result = _decoded(backend, resp, lambda raw: backend.decode_embeddings(raw, body), raw)
    return Response(request, status=resp.status, headers=resp.headers, result=result)


def _decoded(
    backend: HTTPBackend,
    resp: aiohttp.ClientResponse,
    decoder: Callable[[bytes], _T],
    raw: bytes,
) -> _T:
    """``decoder(raw)``; an error body becomes a status error with the real status and
    headers, any other failure a ``DecodeError`` (naming a content type that isn't JSON)."""
    try:
        return decoder(raw)
    except ErrorBody as exc:
        raise _mapped(backend, resp.status, exc.body, resp.headers) from None
    except Exception as exc:
        media = media_type(resp)
        if media and not _intake.is_json(media) and media not in backend.stream_types:
            raise _intake.not_api_body(media, raw, "a JSON body") from exc
        error = as_decode_error(exc, "response body")
        if error is exc:
            raise
        raise error from exc


async def _not_a_stream(
    backend: HTTPBackend,
    request: Request,
    resp: aiohttp.ClientResponse,
    media: str,
    parser: StreamParser | None = None,
) -> AsyncIterator[ChatCompletionChunk]:
    """The chunks of a stream request answered with something other than its stream
    type: a sniffed stream, one JSON body (its chunks), or a ``DecodeError``."""
    head = None
    types = backend.stream_types
    kind = _intake.stream_kind(media, types, None)
    if kind == "sniff" or (kind == "json" and types >= _intake.SSE_TYPES):
        # A missing or generic type, or JSON that may be SSE mislabelled: look first.
        head = await _intake.read_head(resp, request.deadline)
        sniffed = _intake.stream_kind("", types, head)
        if kind == "sniff" or sniffed == "stream":
            kind = sniffed
    if kind == "stream":
        watchdog = backend.watch(request, resp)
        parser = parser or backend.stream_parser()
        return _prefixed(head or b"", resp, parser, watchdog, request.deadline)
    expected = " or ".join(sorted(types)) + " or JSON"
    if kind == "other":
        raise _intake.not_api_body(media, await _intake.read_some(resp, head or b""), expected)
    limit = backend.pool.config.max_body_bytes
    raw = await read_body(resp, limit, request.deadline, head or b"")
    resp.release()
    return _iterate(_decoded(backend, resp, backend.body_chunks, raw))


async def _iterate(chunks: list[ChatCompletionChunk]) -> AsyncIterator[ChatCompletionChunk]:
    for chunk in chunks:
        yield chunk


async def _prefixed(
    head: bytes,
    resp: aiohttp.ClientResponse,
    parser: StreamParser,
    watchdog: StreamWatchdog | None,
    deadline: float | None,
) -> AsyncIterator[ChatCompletionChunk]:
    """A stream whose first bytes (``head``) were read to judge its type."""
    rest = read_stream(resp, parser, watchdog, deadline)
    started = False
    try:
        for chunk in parser.feed(head):
            yield chunk
        if parser.failure is not None:
            raise parser.failure
        started = True
        async for chunk in rest:
            yield chunk
    finally:
        if started:
            await rest.aclose()
        else:  # read_stream never ran: its cleanup is ours
            if watchdog is not None:
                watchdog.cancel()
            resp.close()


def _mapped(
    backend: HTTPBackend, status: int, body: Any, headers: Mapping[str, str]
) -> APIStatusError:
    """``backend.status_error``, robust to hostile bodies (then mapped from the text)."""
    try:
        return backend.status_error(status, body, headers)
    except Exception:
        text = body if isinstance(body, str) else ""
        return error_for_status(status, text, headers, request_id_header=backend.request_id_header)


async def _status_error(
    backend: HTTPBackend, resp: aiohttp.ClientResponse, deadline: float | None
) -> LLMFastError:
    try:
        raw = await read_body(resp, backend.pool.config.max_body_bytes, deadline)
    except LLMFastError as exc:
        if not isinstance(exc, DecodeError):  # the error body's read broke: say so
            return exc
        raw = b""  # too large: the status alone says what happened
    return _mapped(backend, resp.status, decode_error_body(raw), resp.headers)
