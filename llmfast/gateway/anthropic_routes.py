"""The Anthropic-compatible endpoint: ``POST /v1/messages``, streaming and not, over
any deployment (see [`anthropic_wire`][llmfast.gateway.anthropic_wire])."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from llmfast.gateway.answers import Failure
from llmfast.gateway.anthropic_wire import (
    StreamTranslator,
    anthropic_error,
    message_json,
    parse_messages,
)
from llmfast.gateway.forward import forward_stream
from llmfast.types import ChatCompletion

if TYPE_CHECKING:
    from llmfast.gateway.app import Call

__all__ = ["error_event", "messages"]


async def messages(call: Call) -> web.StreamResponse:
    """``POST /v1/messages``."""
    body, stream = parse_messages(await call.body())
    request = call.request_for(body, stream=stream)
    response = await call.send(request)
    if not stream:
        completion: ChatCompletion = await response.collect()
        call.note_usage(completion.usage)
        return call.json(message_json(completion, body.model))
    translator = StreamTranslator(body.model)
    return await forward_stream(call, response, translator, error_event)


def error_event(failure: Failure) -> bytes:
    """An in-stream ``error`` event."""
    return b"event: error\ndata: " + anthropic_error(failure) + b"\n\n"
