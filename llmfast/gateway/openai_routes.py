"""The OpenAI-compatible endpoints: ``POST /v1/chat/completions`` (streaming and not),
``POST /v1/embeddings`` and ``GET /v1/models``.

A request body is checked against the typed request (a wrong type is a 400 naming
the field); parameters llmfast has no field for travel on as ``extra_body``. Results
and chunks are llmfast's shared types, which are OpenAI's shapes, encoded as they are.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from llmfast.events import EventHook
from llmfast.gateway.answers import Failure, openai_error
from llmfast.gateway.forward import forward_stream
from llmfast.gateway.openai_frames import ChunkFrames
from llmfast.gateway.openai_wire import completion_json, embeddings_json
from llmfast.transport import Request
from llmfast.types import (
    ChatCompletion,
    ChatRequest,
    EmbeddingRequest,
    EmbeddingResponse,
)

if TYPE_CHECKING:
    from llmfast.gateway.app import Call

__all__ = [
    "BadInput",
    "chat_completions",
    "embeddings",
    "error_response",
    "json_object",
    "models",
    "parse_chat",
    "parse_embeddings",
    "typed_fields",
]

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class BadInput(Exception):
    """A request the gateway refuses before calling anything (answered with 4xx)."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


class _ChatBody(msgspec.Struct, kw_only=True):
    """The typed fields of a chat request, as a client may send them (for checking)."""

    model: str
    messages: list[dict[str, Any]]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    user: str | None = None


class _EmbedBody(msgspec.Struct, kw_only=True):
    model: str
    input: str | list[Any]
    dimensions: int | None = None
    encoding_format: str | None = None
    user: str | None = None


class _ChatWire(_ChatBody, kw_only=True, forbid_unknown_fields=True):
    """A chat body with only the typed fields (and the stream flags), decoded in one pass;
    anything else about it (an unknown field, a wrong type, not JSON) takes the checking
    path instead, which finds the same body the same answer."""

    stream: bool = False
    stream_options: dict[str, Any] | None = None


_CHAT_FIELDS = frozenset(_ChatBody.__struct_fields__)
_decode_chat_wire = msgspec.json.Decoder(_ChatWire).decode
_EMBED_FIELDS = frozenset(_EmbedBody.__struct_fields__)


def json_object(raw: bytes) -> dict[str, Any]:
    try:
        data = _decode(raw)
    except (msgspec.DecodeError, RecursionError):
        raise BadInput(400, "the request body is not valid JSON", "invalid_json") from None
    if not isinstance(data, dict):
        raise BadInput(400, "the request body must be a JSON object", "invalid_json")
    return data


def typed_fields(
    data: dict[str, Any], fields: frozenset[str], kind: type[Any]
) -> tuple[Any, dict[str, Any]]:
    """``data`` checked against ``kind`` (a 400 naming the field), and the keys it has no
    field for."""
    if data.keys() <= fields:  # the usual: no parameter beyond the typed ones
        known, extra = data, {}
    else:
        known = {k: v for k, v in data.items() if k in fields}
        extra = {k: v for k, v in data.items() if k not in fields}
    try:
        return msgspec.convert(known, kind), extra
    except msgspec.ValidationError as exc:
        raise BadInput(400, f"invalid request: {exc}", "invalid_request") from None


def parse_chat(raw: bytes) -> tuple[ChatRequest, bool, bool]:
    """``(request, stream, include_usage)`` from a chat-completions body."""
    try:  # the usual body: typed fields only, each of its type
        wire = _decode_chat_wire(raw)
    except (msgspec.DecodeError, RecursionError):
        return _parse_chat_checked(raw)
    if not wire.messages:
        raise BadInput(400, "messages must hold at least one message", "invalid_request")
    request = ChatRequest(
        model=wire.model,
        messages=wire.messages,
        temperature=wire.temperature,
        top_p=wire.top_p,
        max_tokens=wire.max_tokens,
        max_completion_tokens=wire.max_completion_tokens,
        stop=wire.stop,
        seed=wire.seed,
        n=wire.n,
        presence_penalty=wire.presence_penalty,
        frequency_penalty=wire.frequency_penalty,
        logprobs=wire.logprobs,
        top_logprobs=wire.top_logprobs,
        tools=wire.tools,
        tool_choice=wire.tool_choice,
        parallel_tool_calls=wire.parallel_tool_calls,
        response_format=wire.response_format,
        reasoning_effort=wire.reasoning_effort,
        user=wire.user,
    )
    options = wire.stream_options
    return request, wire.stream, bool(options and options.get("include_usage"))


def _parse_chat_checked(raw: bytes) -> tuple[ChatRequest, bool, bool]:
    """`parse_chat` for any other body: its unknown fields kept as ``extra_body``, and
    the 400 naming what is wrong with it."""
    data = json_object(raw)
    stream = data.pop("stream", False)
    options = data.pop("stream_options", None)
    if not isinstance(stream, bool) or not isinstance(options, dict | None):
        raise BadInput(400, "stream must be a boolean and stream_options an object")
    body, extra = typed_fields(data, _CHAT_FIELDS, _ChatBody)
    if not body.messages:
        raise BadInput(400, "messages must hold at least one message", "invalid_request")
    # the fields given, as checked (the others are None in both types)
    fields = {k: getattr(body, k) for k in data if k in _CHAT_FIELDS}
    request = ChatRequest(**fields, extra_body=extra or None)
    include_usage = bool(options and options.get("include_usage"))
    return request, stream, include_usage


def parse_embeddings(raw: bytes) -> EmbeddingRequest:
    """The embeddings request of a body."""
    data = json_object(raw)
    body, extra = typed_fields(data, _EMBED_FIELDS, _EmbedBody)
    if not _valid_input(body.input):
        raise BadInput(
            400,
            "input must be a string, or a non-empty list of strings, of token ids or of "
            "lists of token ids",
            "invalid_request",
        )
    if body.encoding_format not in (None, "float", "base64"):
        raise BadInput(400, "encoding_format must be 'float' or 'base64'", "invalid_request")
    fields = msgspec.structs.asdict(body)
    return EmbeddingRequest(**fields, extra_body=extra or None)


def _valid_input(value: str | list[Any]) -> bool:
    if isinstance(value, str):
        return True
    if not value:
        return False
    if all(isinstance(item, str) for item in value):
        return True
    if all(type(item) is int for item in value):
        return True
    return all(
        isinstance(item, list) and item and all(type(t) is int for t in item) for item in value
    )


async def chat_completions(call: Call) -> web.StreamResponse:
    """``POST /v1/chat/completions``."""
    body, stream, include_usage = parse_chat(await call.body())
    request = call.request_for(body, stream=stream, raw_events=True)
    if not stream:
        response = await call.send(request)
        completion: ChatCompletion = await response.collect()
        call.note_usage(completion.usage)
        return call.json(completion_json(completion))
    response = await call.send(request)
    frames = ChunkFrames(include_usage=include_usage)
    return await forward_stream(call, response, frames, _error_event)


def _error_event(failure: Failure) -> bytes:
    return b"data: " + openai_error(failure) + b"\n\n"


async def embeddings(call: Call) -> web.StreamResponse:
    """``POST /v1/embeddings``."""
    body = parse_embeddings(await call.body())
    response = await call.send(call.request_for(body, stream=False))
    result: EmbeddingResponse = await response.collect()
    call.note_usage(result.usage)
    return call.json(embeddings_json(result))


async def models(call: Call) -> web.StreamResponse:
    """``GET /v1/models``: the models this key may use."""
    created = int(call.gateway.started)
    data = [
        {"id": alias, "object": "model", "created": created, "owned_by": "llmfast-gateway"}
        for alias in call.gateway.config.models
        if call.tenant.may_use(alias)
    ]
    return call.json(_encode({"object": "list", "data": data}))


def error_response(status: int, body: bytes, headers: dict[str, str]) -> web.Response:
    """An error answer in OpenAI's shape."""
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def request_for(
    body: ChatRequest | EmbeddingRequest,
    stream: bool,
    timeout: float | None,
    labels: tuple[str, str],
    on_event: EventHook | None,
    raw_events: bool = False,
) -> Request:
    """The llmfast request of a call, with the model's deadline and the metrics' labels."""
    deadline = None if timeout is None else time.monotonic() + timeout
    return Request(
        body,
        stream=stream,
        deadline=deadline,
        on_event=on_event,
        context={"gateway": labels},
        raw_events=raw_events,
    )
