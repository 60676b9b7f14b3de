"""The mock server's memory of Responses API responses, and the routes that use it.

Every response the server makes on `POST /v1/responses` is kept (unless the request
says `store: false`) in the server's `ResponsesStore`, with the events of its stream:

- `previous_response_id` must name a kept response (else 400); a turn with no user
  message continues the user text of the one it follows;
- `GET /v1/responses/{id}` returns the response; a background one is `in_progress`
  for `polls` retrievals before it is done;
- `GET /v1/responses/{id}?stream=true&starting_after=N` replays the events after
  sequence number N (background responses only, as OpenAI's API: else 400): a stream
  whose connection dropped resumes here. When the next queued reply is a drop
  (`Reply.reset` or `Reply.truncated`), the replay takes it: it is cut after
  `after_chunks` of its events (reset, or ended cleanly), so a resumed stream can drop
  again;
- `POST /v1/responses/{id}/cancel` cancels a background response (else 400).

[`store_of`][llmfast.testing.responses_store.store_of] gives a server's store to tests.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import _payloads as p

if TYPE_CHECKING:
    from .server import MockServer

__all__ = ["ResponsesStore", "Stored", "answer", "current_store", "enter", "store_of"]

_DROPS = ("reset", "truncated")
_CURRENT: contextvars.ContextVar[ResponsesStore | None] = contextvars.ContextVar(
    "llmfast_responses_store", default=None
)


@dataclass
class Stored:
    """One kept response: its final object and the events of its stream (if streamed)."""

    response: dict[str, Any]
    events: list[bytes]
    background: bool
    user_text: str
    polls: int = 1
    """Retrievals that still see a background response `in_progress`."""
    cancelled: bool = False
    retrievals: list[str] = field(default_factory=list)
    """The query string of every `GET` of this response (`""` for a plain one)."""

    @property
    def id(self) -> str:
        """The response id."""
        return str(self.response["id"])


class ResponsesStore:
    """The responses one server has made, by id (the latest `limit`: a server answering
    for hours keeps bounded memory)."""

    limit = 10_000

    def __init__(self) -> None:
        self.responses: dict[str, Stored] = {}
        self.polls = 1
        """How many retrievals see each new background response still ``in_progress``."""

    def put(self, stored: Stored) -> None:
        """Keep ``stored``."""
        stored.polls = self.polls
        responses = self.responses
        responses[stored.id] = stored
        if len(responses) > self.limit:
            del responses[next(iter(responses))]  # the oldest

    def get(self, response_id: str) -> Stored | None:
        """The response ``response_id``, if kept."""
        return self.responses.get(response_id)


def store_of(server: MockServer) -> ResponsesStore:
    """The Responses store of ``server`` (made on first use)."""
    store: ResponsesStore | None = getattr(server, "_responses_store", None)
    if store is None:
        store = ResponsesStore()
        server._responses_store = store  # type: ignore[attr-defined]
    return store


def enter(server: MockServer) -> ResponsesStore:
    """Make ``server``'s store the one the Responses format keeps into, for the request
    being handled (a context variable: each request is its own task)."""
    store = store_of(server)
    _CURRENT.set(store)
    return store


def current_store() -> ResponsesStore | None:
    """The store of the server handling the current request."""
    return _CURRENT.get()


def _error(status: int, message: str, number: int) -> web.Response:
    body = p.error_body(message, "invalid_request_error")
    headers = {"Content-Type": "application/json", "x-request-id": f"req_{number}"}
    return web.Response(status=status, body=body, headers=headers)


async def answer(server: MockServer, request: web.BaseRequest, number: int) -> web.StreamResponse:
    """Answer a request under `/v1/responses/{id}` (retrieve, resume, cancel)."""
    store = enter(server)
    rest = request.path.removeprefix("/v1/responses/")
    response_id, _, action = rest.partition("/")
    stored = store.get(response_id)
    if stored is None:
        return _error(404, f"Response with id '{response_id}' not found.", number)
    headers = {"Content-Type": "application/json", "x-request-id": f"req_{number}"}
    if action == "cancel" and request.method == "POST":
        if not stored.background:
            return _error(400, "Only background responses can be cancelled.", number)
        stored.cancelled = True
        body = {**stored.response, "status": "cancelled"}
        return web.Response(body=p.ENCODER.encode(body), headers=headers)
    if action or request.method != "GET":
        return _error(404, f"Invalid URL ({request.method} {request.path})", number)
    stored.retrievals.append(request.query_string)
    query = request.query
    if query.get("stream") == "true":
        if not stored.background or not stored.events:
            return _error(400, "Only background responses can be streamed on retrieval.", number)
        try:
            after = int(query.get("starting_after", "-1"))
        except ValueError:
            return _error(400, "starting_after must be an integer.", number)
        queue = server._queue
        fault = queue.popleft() if queue and queue[0].kind in _DROPS else None
        events = stored.events[after + 1 :]
        sse = {"Content-Type": "text/event-stream", "x-request-id": f"req_{number}"}
        stream = web.StreamResponse(headers=sse)
        await stream.prepare(request)
        if fault is None:
            await stream.write(b"".join(events))
            return stream
        await stream.write(b"".join(events[: fault.after_chunks]))
        if fault.kind == "reset" and request.transport is not None:
            request.transport.abort()
        return stream
    response = stored.response
    if stored.cancelled:
        response = {**response, "status": "cancelled"}
    elif stored.background and stored.polls > 0:
        stored.polls -= 1
        response = {**response, "status": "in_progress", "output": [], "usage": None}
    return web.Response(body=p.ENCODER.encode(response), headers=headers)
