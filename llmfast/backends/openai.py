"""The OpenAI-compatible backend: ``/chat/completions`` and ``/embeddings``.

Speaks to OpenAI and to every server that copies its API (vLLM, llama.cpp,
Ollama's ``/v1``, Groq, Together, OpenRouter, DeepSeek...). Streams are read as
Server-Sent Events with ``stream_options.include_usage`` so usage arrives last.
"""

from __future__ import annotations

import array
import base64
import binascii
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any, cast
from urllib.parse import urlsplit

import msgspec
from multidict import CIMultiDict, CIMultiDictProxy

from llmfast.backends._http import ChunkParser, ErrorBody, StreamParser, decode, url
from llmfast.backends._openai_raw import RawChatStreamParser
from llmfast.backends._prompt_cache import without_marks
from llmfast.backends._respond import respond
from llmfast.backends.base import HTTPBackend
from llmfast.backends.sse import SSEDecoder, SSEEvent
from llmfast.errors import (
    APIStatusError,
    ConfigurationError,
    DecodeError,
    StreamEventError,
    StreamTruncatedError,
)
from llmfast.transport import Request, Response
from llmfast.types import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    Embedding,
    EmbeddingRequest,
    EmbeddingResponse,
    EmbeddingUsage,
)

__all__ = ["OpenAIBackend"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"

_encode = msgspec.json.Encoder().encode
_decode_completion = msgspec.json.Decoder(ChatCompletion).decode
_decode_chunk = msgspec.json.Decoder(ChatCompletionChunk).decode
_decode_embeddings = msgspec.json.Decoder(EmbeddingResponse).decode
_decode_any = msgspec.json.Decoder().decode

_STREAM_SUFFIX = b',"stream":true,"stream_options":{"include_usage":true}}'
_STREAM_ONLY_SUFFIX = b',"stream":true}'
_MARK = b'cache_control"'  # the key of a typed cache= mark (the quickest needle measured)
_VERSION = re.compile(r"v\d+[a-z0-9]*")  # v1, v1beta, v2alpha1...
_CHAT_FIELDS = frozenset(ChatRequest.__struct_fields__)
_EMBED_FIELDS = frozenset(EmbeddingRequest.__struct_fields__)


class _B64Embedding(msgspec.Struct):
    embedding: str
    index: int = 0


class _B64EmbeddingResponse(msgspec.Struct):
    data: list[_B64Embedding]
    model: str = ""
    usage: EmbeddingUsage | None = None


_decode_b64_embeddings = msgspec.json.Decoder(_B64EmbeddingResponse).decode


def encode_request(body: ChatRequest | EmbeddingRequest, stream: bool) -> bytes:
    """The JSON body for ``body``: typed fields, then ``extra_body`` merged on top."""
    extra = body.extra_body
    if extra:
        fields = _CHAT_FIELDS if type(body) is ChatRequest else _EMBED_FIELDS
        for key in extra:
            if key == "stream" or (key in fields and getattr(body, key) is not None):
                raise ConfigurationError(
                    f"extra_body key {key!r} repeats a typed request field; set the field"
                )
        data = _encode(msgspec.structs.replace(body, extra_body=None))
        extra_json = _encode(extra)
        data = data[:-1] + b"," + extra_json[1:]
    else:
        data = _encode(body)
    if _MARK in data and type(body) is ChatRequest:  # typed cache= marks: Anthropic's only
        bare = without_marks(body)
        if bare is not body:
            data = encode_request(bare, False)
    if stream:
        if extra and "stream_options" in extra:
            return data[:-1] + _STREAM_ONLY_SUFFIX
        return data[:-1] + _STREAM_SUFFIX
    return data


class OpenAIBackend(HTTPBackend):
    """Backend for the OpenAI chat-completions and embeddings API and its look-alikes.

    Args:
        base_url: the API root including the version, e.g. ``https://api.openai.com/v1``.
        api_key: sent as ``Authorization: Bearer``; never shown in reprs or errors.
        model: the default model for calls that name none.
        headers: extra headers sent with every request.
        organization: sent as OpenAI's ``OpenAI-Organization`` header.
        project: sent as OpenAI's ``OpenAI-Project`` header.
    """

    kind = "openai"

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        organization: str | None = None,
        project: str | None = None,
    ) -> None:
        super().__init__(base_url=base_url, model=model, headers=headers)
        self._auth: dict[str, str] = {}
        if api_key:
            self._auth["Authorization"] = f"Bearer {api_key}"
        if organization:
            self._auth["OpenAI-Organization"] = organization
        if project:
            self._auth["OpenAI-Project"] = project
        self._headers = {
            "Content-Type": "application/json",
            **self._extra_headers,
            **self._auth,
        }
        # aiohttp copies a call's headers into a CIMultiDict (a dict is converted first):
        # given as one, made once, they are copied only
        self._sent_headers = CIMultiDictProxy(CIMultiDict(self._headers))
        self._chat_url = url(self.base_url + "/chat/completions")
        self._embed_url = url(self.base_url + "/embeddings")
        self._not_found_hint = version_hint(self.base_url)

    def auth_headers(self) -> Mapping[str, str]:
        return self._auth

    async def send(self, request: Request, /) -> Response:
        body = request.body
        is_chat = type(body) is ChatRequest
        url = self._chat_url if is_chat else self._embed_url
        stream = request.stream and is_chat
        data = encode_request(body, stream)
        headers: Mapping[str, str] = self._sent_headers
        if request.headers is not None:
            headers = {**self._headers, **request.headers}
        resp = await self.post(request, url, data, headers)
        parser: StreamParser | None = None
        if stream and request.raw_events:
            # its batches are RawEvents: they iterate as the chunks, and say more
            parser = cast(StreamParser, RawChatStreamParser(self.pool.config.max_event_bytes))
        return await respond(self, request, resp, stream, parser)

    def decode_chat(self, raw: bytes) -> ChatCompletion:
        return _decode_chat(raw)

    def decode_embeddings(self, raw: bytes, body: EmbeddingRequest) -> EmbeddingResponse:
        if body.encoding_format == "base64":
            return _decode_base64_embeddings(raw)
        return decode(_decode_embeddings, raw, "embeddings response")

    def stream_parser(self) -> _ChatStreamParser:
        return _ChatStreamParser(self.pool.config.max_event_bytes)

    def status_error(self, status: int, body: Any, headers: Mapping[str, str]) -> APIStatusError:
        error = super().status_error(status, body, headers)
        if self._not_found_hint is not None and status == 404:
            error.args = (f"{error}; {self._not_found_hint}",)
        return error


def version_hint(base_url: str) -> str | None:
    """For a 404: a hint when ``base_url``'s path has no version segment (``/v1``...),
    the usual mistake with OpenAI-compatible servers; None when it has one."""
    parts = urlsplit(base_url)
    if any(_VERSION.fullmatch(segment) for segment in parts.path.split("/")):
        return None
    if parts.username or parts.password or parts.query:  # never echo credentials
        return "the base_url has no /v1 (OpenAI-compatible APIs usually live under /v1)"
    return f"did you mean base_url={base_url.rstrip('/') + '/v1'!r}?"


def _decode_chat(raw: bytes) -> ChatCompletion:
    result = decode(_decode_completion, raw, "chat completion")
    if not result.choices:
        # Some proxies answer 200 with an error body instead of an error status.
        body = decode(_decode_any, raw, "chat completion")
        if isinstance(body, dict) and body.get("error") is not None:
            raise ErrorBody(body)
    return result


def _decode_base64_embeddings(raw: bytes) -> EmbeddingResponse:
    decoded = decode(_decode_b64_embeddings, raw, "embeddings response")
    data = []
    for item in decoded.data:
        floats = array.array("f")
        try:
            floats.frombytes(base64.b64decode(item.embedding, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise DecodeError(f"malformed base64 embedding {item.index}: {exc}") from exc
        if sys.byteorder != "little":
            floats.byteswap()
        data.append(Embedding(embedding=floats.tolist(), index=item.index))
    return EmbeddingResponse(data=data, model=decoded.model, usage=decoded.usage)


class _ChatStreamParser(ChunkParser):
    """OpenAI chat SSE: ``data: <chunk>`` events ending with ``data: [DONE]``.

    Plain ``data:`` events come from the decoder as raw bytes, decoded by msgspec straight
    from them; any other framing comes as an ``SSEEvent`` from the exact decoder.
    """

    __slots__ = ("_feed",)

    end_marker = "[DONE]"

    def __init__(self, max_event_bytes: int | None = None) -> None:
        super().__init__()
        self._feed = SSEDecoder(max_event_bytes).feed_payloads

    def parse(self, data: bytes, out: list[ChatCompletionChunk]) -> None:
        items = self._feed(data)
        start = 0
        for item in items:  # an event completed across reads comes first, as an SSEEvent
            if type(item) is bytes:
                break
            start += 1
            if self._take(item, out):
                break
        if start:
            ChunkParser._note(self, out)
            if self.done:
                return
            items = items[start:]
        if not items:
            return
        done = items[-1] == b"[DONE]"
        if done:
            del items[-1]
        try:  # the usual case: plain payloads, decoded in one C-level pass
            # (an SSEEvent among them raises TypeError: the exact path takes it then)
            chunks: list[ChatCompletionChunk] = list(map(_decode_chunk, items))  # type: ignore[arg-type]
        except Exception:  # anything unusual: the exact path, one item at a time
            start = len(out)
            for item in items:
                if self._take(item, out):
                    break
            ChunkParser._note(self, out[start:])
            if self.done:
                return
        else:
            # One pass: error events, and which choices were seen and finished.
            opened = self._opened
            finished = self._finished
            for chunk in chunks:
                if chunk.error is not None:
                    out += chunks[: chunks.index(chunk)]
                    raise StreamEventError(chunk.error)
                for choice in chunk.choices:
                    if choice.finish_reason is None:
                        if choice.index not in opened:
                            opened.add(choice.index)
                    else:
                        finished.add(choice.index)
            out += chunks
        if done:
            self.done = True

    def _note(self, out: Iterable[ChatCompletionChunk]) -> None:
        """Noted by `parse` itself, in the pass that checks for error events."""

    def _take(self, item: bytes | SSEEvent, out: list[ChatCompletionChunk]) -> bool:
        """Append the chunk of one event to ``out``; True at the end marker."""
        if type(item) is bytes:
            if item == b"[DONE]":
                self.done = True
                return True
            try:
                chunk: ChatCompletionChunk = _decode_chunk(item)
            except (msgspec.DecodeError, msgspec.ValidationError):
                # e.g. invalid UTF-8, which the event-stream rules replace by U+FFFD
                chunk = _decode_chunk_text(item.decode("utf-8", "replace"))
        else:
            assert isinstance(item, SSEEvent)
            payload = item.data
            if payload == "[DONE]":
                self.done = True
                return True
            if item.event != "message":
                if item.event == "error":
                    raise StreamEventError(_decode_any_or_text(payload))
                return False  # pings and other named events are not chunks
            chunk = _decode_chunk_text(payload)
        if chunk.error is not None:
            raise StreamEventError(chunk.error)
        out.append(chunk)
        return False

    def finish(self, out: list[ChatCompletionChunk]) -> None:
        if not self.done:
            raise StreamTruncatedError("the event stream ended before [DONE]")


def _decode_chunk_text(payload: str) -> ChatCompletionChunk:
    try:
        chunk: ChatCompletionChunk = _decode_chunk(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DecodeError(f"malformed stream chunk: {exc}; data starts {payload[:200]!r}") from exc
    return chunk


def _decode_any_or_text(payload: str) -> Any:
    try:
        body = _decode_any(payload)
    except msgspec.DecodeError:
        return payload
    return body.get("error", body) if isinstance(body, dict) else body
