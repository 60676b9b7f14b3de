"""Answering one item of a provider batch with the mock server's normal replies: the
next enqueued [`Reply`][llmfast.testing.Reply] (an ``error`` reply fails the item), else
the default echo, in the batch's wire format."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from . import _payloads as p
from .formats import Answer, BadRequest, Route, WireFormat

if TYPE_CHECKING:
    from .server import MockServer

__all__ = ["answer_item"]


def answer_item(server: MockServer, fmt: WireFormat, body: Any, embed: bool) -> tuple[int, bytes]:
    """The status and JSON body answering one batch item."""
    reply = server._queue.popleft() if server._queue else server.default
    if reply.kind == "error":
        return reply.status, fmt.reply_error(reply, reply.status)
    if not isinstance(body, dict):
        return 400, fmt.error_body(400, p.error_spec("the request body must be an object"))
    try:
        if embed:
            return 200, fmt.embed_body(fmt.embed_call(Route(fmt, "embed"), body))
        call = fmt.chat_call(Route(fmt, "chat"), body)
    except BadRequest as exc:
        return 400, fmt.error_body(400, p.error_spec(str(exc)))
    if not call.model:
        call = type(call)(
            call.stream, server.model, call.n, call.user_text, call.prompt_tokens, body
        )
    text = reply.content if reply.kind == "text" and reply.content is not None else call.user_text
    answer = Answer(
        number=0,
        created=int(time.time()),
        text=text,
        pieces=(),
        reasoning=None,
        calls=(),
        ids=(),
        finish_reason=reply.finish_reason or "stop",
        completion_tokens=p.count_words(text),
    )
    return 200, fmt.chat_body(call, answer)
