"""The HTTP plumbing the Anthropic, Ollama and Gemini backends share.

`JSONBackend` posts a request body built by the subclass, maps transport
failures and error statuses into ``llmfast.errors``, and turns a streamed body into
typed chunks through a `StreamParser` (an I/O-free object fed the raw bytes).
Subclasses implement the wire format only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
import yarl

from llmfast.backends.base import HTTPBackend
from llmfast.backends.watchdog import StreamWatchdog
from llmfast.errors import (
    APIStatusError,
    DecodeError,
    LLMFastError,
    StreamTruncatedError,
    error_for_status,
)
from llmfast.pool import map_transport_error
from llmfast.transport import Request, Response
from llmfast.types import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    EmbeddingRequest,
    EmbeddingResponse,
)

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "ChunkParser",
    "ChunkStream",
    "JSONBackend",
    "StreamParser",
    "decode",
    "decode_error_body",
    "url",
]

_decode_any = msgspec.json.Decoder().decode
_DONE_GRACE_SECONDS = 2.0


class StreamParser(Protocol):
    """Turns a streamed body into chunks, fed the raw bytes as they arrive."""

    done: bool
    """True once the provider's end-of-stream marker has been seen."""
    failure: LLMFastError | None
    """An error met after some chunks of the same slice (raise it once they are passed on)."""

    def feed(self, data: bytes) -> list[ChatCompletionChunk]:
        """The chunks completed by the next slice of the body."""
        ...

    def close(self) -> list[ChatCompletionChunk]:
        """At end of body: the last chunks; ``StreamTruncatedError`` if incomplete."""
        ...


class ChunkParser:
    """Base of the stream parsers: a failure never loses the chunks completed before it.

    Subclasses implement `parse` (and `finish`), appending to ``out`` and
    raising llmfast errors; `feed` returns what was appended before an error and
    keeps the error in ``failure``, to be raised once those chunks are passed on.
    """

    __slots__ = ("_finished", "_opened", "done", "failure")

    end_marker = "its end marker"
    """How the provider's end of stream is named in a truncation error."""

    def __init__(self) -> None:
        self.done = False
        self.failure: LLMFastError | None = None
        self._opened: set[int] = set()  # choice indices seen without a finish reason
        self._finished: set[int] = set()  # choice indices seen with one

    def parse(self, data: bytes, out: list[ChatCompletionChunk]) -> None:
        """Append the chunks completed by ``data`` to ``out``."""
        raise NotImplementedError

    def finish(self, out: list[ChatCompletionChunk]) -> None:
        """At end of body: append the last chunks; raise if the stream is incomplete."""

    def feed(self, data: bytes) -> list[ChatCompletionChunk]:
        if self.failure is not None:
            raise self.failure
        out: list[ChatCompletionChunk] = []
        try:
            self.parse(data, out)
        except LLMFastError as exc:
            if not out:
                raise
            self.failure = exc
        self._note(out)
        return out

    def close(self) -> list[ChatCompletionChunk]:
        if self.failure is not None:
            raise self.failure
        out: list[ChatCompletionChunk] = []
        try:
            self.finish(out)
            self._note(out)
            if self.done:
                self._check_finished()
        except LLMFastError as exc:
            if not out:
                raise
            self.failure = exc
        return out

    def _note(self, out: list[ChatCompletionChunk]) -> None:
        """Track which choices have their finish reason (one set insert per choice)."""
        opened = self._opened
        finished = self._finished
        for chunk in out:
            for choice in chunk.choices:
                if choice.finish_reason is None:
                    opened.add(choice.index)
                else:
                    finished.add(choice.index)

    def _check_finished(self) -> None:
        """At the end marker: raise ``StreamTruncatedError`` unless every choice finished.

        A stream that ends "cleanly" while a choice has no finish reason was cut short
        (llama.cpp's server does this to interrupt a request for the next one); so is one
        that ends without any finished choice.
        """
        finished = self._finished
        missing = self._opened - finished
        if finished and not missing:
            return
        if missing:
            which = ", ".join(map(str, sorted(missing)))
            detail = f"choice {which} had no finish reason"
        else:
            detail = "no choice had a finish reason"
        raise StreamTruncatedError(
            f"the stream ended with {self.end_marker} but was unfinished: {detail}"
        )


def url(text: str) -> Any:
    """A parsed URL (parsed once per endpoint, so aiohttp need not parse it per call)."""
    return yarl.URL(text)


def decode(decoder: Any, raw: bytes, what: str) -> Any:
    """``decoder(raw)``, with msgspec failures raised as ``DecodeError``."""
    try:
        return decoder(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DecodeError(f"malformed {what}: {exc}; body starts {raw[:200]!r}") from exc


def decode_error_body(raw: bytes) -> Any:
    """An error body as JSON when it is JSON, else as text."""
    try:
        return _decode_any(raw)
    except msgspec.DecodeError:
        return raw.decode("utf-8", "replace")


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

    # -- the wire format (subclasses) ---------------------------------------------------

    def chat_call(self, body: ChatRequest, stream: bool) -> tuple[Any, bytes]:
        """The URL and JSON body of a chat request."""
        raise NotImplementedError

    def embed_call(self, body: EmbeddingRequest) -> tuple[Any, bytes]:
        """The URL and JSON body of an embeddings request."""
        raise NotImplementedError

    def decode_chat(self, raw: bytes) -> ChatCompletion:
        """A whole (non-streamed) chat response."""
        raise NotImplementedError

    def decode_embeddings(self, raw: bytes, body: EmbeddingRequest) -> EmbeddingResponse:
        """A whole embeddings response."""
        raise NotImplementedError

    def stream_parser(self) -> StreamParser:
        """A fresh parser for one streamed response."""
        raise NotImplementedError

    def status_error(self, status: int, body: Any, headers: Mapping[str, str]) -> APIStatusError:
        """The error for an HTTP error response (``body`` as JSON, or text)."""
        return error_for_status(status, body, headers, request_id_header=self.request_id_header)

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
        try:
            if resp.status >= 300:
                raise await self._status_error(resp)
            if stream:
                watchdog = self.watch(request, resp.close)
                chunks = read_stream(resp, self.stream_parser(), watchdog, request.deadline)
                return Response(request, status=resp.status, headers=resp.headers, chunks=chunks)
            try:
                raw = await resp.read()
            except Exception as exc:
                raise map_transport_error(exc, "reading the response", request.deadline) from exc
        except BaseException:
            resp.close()
            raise
        resp.release()
        if type(body) is ChatRequest:
            result: ChatCompletion | EmbeddingResponse = self.decode_chat(raw)
        else:
            assert isinstance(body, EmbeddingRequest)
            result = self.decode_embeddings(raw, body)
        return Response(request, status=resp.status, headers=resp.headers, result=result)

    async def _status_error(self, resp: aiohttp.ClientResponse) -> LLMFastError:
        try:
            raw = await resp.read()
        except Exception as exc:
            return map_transport_error(exc, f"reading the HTTP {resp.status} error body")
        return self.status_error(resp.status, decode_error_body(raw), resp.headers)


class ChunkStream:
    """The chunks of a streamed body (what ``read_stream``
    returns): iterate it for one chunk at a time, or take ``batches()``, the lists of
    chunks each read completed, to pay one async step per read instead of per chunk.
    Either way, once: the body is read only once.
    """

    __slots__ = ("_batches", "_flat")

    def __init__(self, batches: AsyncGenerator[list[ChatCompletionChunk], None]) -> None:
        self._batches = batches
        self._flat: AsyncGenerator[ChatCompletionChunk, None] | None = None

    def batches(self) -> AsyncGenerator[list[ChatCompletionChunk], None]:
        """The chunks as lists, one per read that completed some."""
        return self._batches

    def __aiter__(self) -> AsyncGenerator[ChatCompletionChunk, None]:
        flat = self._flat
        if flat is None:
            flat = self._flat = _flatten(self._batches)
        return flat

    def __anext__(self) -> Awaitable[ChatCompletionChunk]:
        return self.__aiter__().__anext__()

    async def aclose(self) -> None:
        """Stop reading and release the connection (closes it unless the body was whole)."""
        if self._flat is not None:
            await self._flat.aclose()
        await self._batches.aclose()


async def _flatten(
    batches: AsyncGenerator[list[ChatCompletionChunk], None],
) -> AsyncGenerator[ChatCompletionChunk, None]:
    try:
        async for batch in batches:
            for chunk in batch:
                yield chunk
    finally:
        await batches.aclose()  # a loop left early must not wait for the GC to close it


def read_stream(
    resp: aiohttp.ClientResponse,
    parser: StreamParser,
    watchdog: StreamWatchdog | None = None,
    deadline: float | None = None,
) -> ChunkStream:
    """Chunks from a streamed body; closes (or, once complete, releases) the connection.

    A read that completes chunks counts as an event for the ``watchdog`` (first-chunk
    and idle timeouts); keep-alives and pings complete none.
    """
    return ChunkStream(_read_batches(resp, parser, watchdog, deadline))


async def _read_batches(
    resp: aiohttp.ClientResponse,
    parser: StreamParser,
    watchdog: StreamWatchdog | None,
    deadline: float | None,
) -> AsyncGenerator[list[ChatCompletionChunk], None]:
    reader = resp.content
    feed = parser.feed
    complete = False
    grace: asyncio.TimerHandle | None = None
    try:
        while True:
            try:
                data = await reader.readany()
            except Exception as exc:
                if parser.done:  # everything arrived; only the end of the body went wrong
                    break
                if watchdog is not None and watchdog.expired is not None:
                    raise watchdog.expired from exc
                raise map_transport_error(exc, "reading the response stream", deadline) from exc
            if not data:
                break
            if parser.done:
                continue
            chunks = feed(data)
            if chunks:
                if watchdog is not None:
                    watchdog.event()  # once per read: its events arrived together
                yield chunks
            if parser.failure is not None:
                raise parser.failure
            if parser.done and not reader.at_eof():
                # The body's end should follow at once; don't wait long for it.
                grace = asyncio.get_running_loop().call_later(_DONE_GRACE_SECONDS, resp.close)
        chunks = parser.close()
        if chunks:
            yield chunks
        if parser.failure is not None:
            raise parser.failure
        complete = True
    finally:
        if watchdog is not None:
            watchdog.cancel()
        if grace is not None:
            grace.cancel()
        if complete or parser.done:
            resp.release()
        else:
            resp.close()
