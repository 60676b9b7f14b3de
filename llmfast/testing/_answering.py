"""How [MockServer][llmfast.testing.MockServer] answers a request it has routed: a chat
completion (plain or streamed, with faults injected on the way), embeddings, raw bytes;
the headers and JSON bodies they share."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from . import _payloads as p
from . import hostile
from .flow import StreamFlow
from .formats import OPENAI, Answer, Route, StreamPlan, WireFormat
from .prompt_cache import PromptCacheEcho
from .replies import Reply, split_tokens
from .structured_replies import structured_reply

__all__ = ["Answering", "_Abort", "_resolve"]

_JSON = "application/json"
_SSE = "text/event-stream"


class _Abort(Exception):
    """Abort the current connection (a reset reply, or the server is closing)."""


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Answering:
    """The answering half of [MockServer][llmfast.testing.MockServer] (a base class)."""

    default: Reply
    model: str
    _call_count: int
    _parked: set[asyncio.Future[None]]
    _closing: bool
    _prompt_cache: PromptCacheEcho
    _next_flow: Callable[[], StreamFlow | None]  # from FlowWatching

    async def _chat(
        self,
        request: web.BaseRequest,
        route: Route,
        body: dict[str, Any],
        reply: Reply,
        number: int,
    ) -> web.StreamResponse:
        fmt = route.fmt
        if reply is self.default and reply.kind == "echo":
            # Nothing scripted: a structured request gets a schema-valid answer.
            reply = structured_reply(fmt.name, body, number) or reply
        call = fmt.chat_call(route, body)
        if not call.model:
            call = dataclasses.replace(call, model=self.model)
        if fmt.name == "anthropic":  # breakpoints get Anthropic's cache figures
            call = self._prompt_cache.account(call)
        stream = call.stream
        if reply.kind == "stream_error" and not stream:
            return self._json(500, fmt.reply_error(reply, 500), number, reply.headers, fmt)
        kind = reply.kind
        calls = reply.calls
        pieces: tuple[str, ...]
        text: str | None
        if kind == "unstreamed":
            text, pieces, stream = reply.content or call.user_text, (), False
        elif kind in ("text", "tool_calls"):
            text, pieces = reply.content, reply.chunks
        else:
            text = call.user_text
            pieces = split_tokens(text, reply.chunk_size) if stream else ()
        reasoning = reply.reasoning
        completion = p.count_words(text or "") + sum(p.count_words(c.arguments) for c in calls)
        thoughts = 0 if reasoning is None else p.count_words(reasoning)
        completion += thoughts
        cached = min(reply.cached_tokens, call.prompt_tokens)
        written = min(reply.cache_write_tokens, call.prompt_tokens - cached)
        answer = Answer(
            number=number,
            created=int(time.time()),
            text=text,
            pieces=pieces,
            reasoning=reasoning,
            calls=calls,
            ids=tuple(c.id or self._next_call_id(fmt) for c in calls),
            finish_reason=None if kind == "unfinished" else reply.finish_reason,
            completion_tokens=completion,
            reasoning_tokens=thoughts,
            cached_tokens=cached,
            cache_write_tokens=written,
        )
        if not stream:
            data = fmt.chat_body(call, answer)
            return await self._send_body(request, reply, data, number, fmt, fmt.malformed_chat)
        plan = fmt.chat_stream(call, answer)
        headers = self._headers(fmt.stream_type, number, reply.headers, fmt)
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        if kind in ("text", "echo", "tool_calls"):
            flow = self._next_flow()
            if flow is not None:  # watched (llmfast.testing.flow)
                await flow.write(request, response, b"".join([*plan.events, plan.end]))
                return response
            await self._write_stream(response, plan, reply.token_delay, len(pieces))
            return response
        return await self._stream_fault(response, reply, plan, fmt)

    async def _write_stream(
        self, response: web.StreamResponse, plan: StreamPlan, token_delay: float, pieces: int
    ) -> None:
        events = [*plan.events, plan.end]
        if token_delay and pieces > 1:
            # Pace the content: a pause before each content piece after the first.
            start = 0
            for piece in range(2, pieces + 1):
                stop = plan.content_start + (piece - 1) * plan.per_piece
                await response.write(b"".join(events[start:stop]))
                start = stop
                await self._park(token_delay)
            events = events[start:]
        await response.write(b"".join(events))

    async def _stream_fault(
        self, response: web.StreamResponse, reply: Reply, plan: StreamPlan, fmt: WireFormat
    ) -> web.StreamResponse:
        events = plan.events
        cut = reply.after_chunks
        head = b"".join(events[:cut])
        kind = reply.kind
        if kind in ("malformed", "nested"):
            bad = fmt.bad_event
            if kind == "nested":
                bad = bad.replace(b"{not json}", hostile.nested_json(reply.depth))
            await response.write(head + bad + b"".join(events[cut:]) + plan.end)
        elif kind == "truncated":
            await response.write(head)
        elif kind == "unfinished":
            await response.write(head + fmt.unfinished_end(plan))
        elif kind == "stream_error":
            await response.write(head + fmt.stream_error(reply))
        elif kind == "endless":
            start = fmt.bad_event.partition(b"{not json}")[0]  # the format's event prefix
            await self._endless(response, head + start + b'{"content":"')
        else:  # reset or stall after some events
            await response.write(head)
            if kind == "stall":
                interval = reply.token_delay  # a stall's keep-alive interval
                if interval:
                    while True:  # ended by close() or the client hanging up
                        await self._park(interval)
                        try:
                            await response.write(fmt.keepalive)
                        except ConnectionError:
                            raise _Abort from None
                await self._park()
            raise _Abort
        return response

    async def _raw(
        self, request: web.BaseRequest, reply: Reply, number: int, fmt: WireFormat
    ) -> web.StreamResponse:
        """Write `reply.body` as given, `chunk_size` bytes per write."""
        data = reply.body
        headers = self._headers(_JSON, number, reply.headers, fmt)
        response = web.StreamResponse(status=reply.status, headers=headers)
        await response.prepare(request)
        size = reply.chunk_size or len(data) or 1
        for start in range(0, len(data), size):
            await response.write(data[start : start + size])
        return response

    async def _embeddings(
        self,
        request: web.BaseRequest,
        route: Route,
        body: dict[str, Any],
        reply: Reply,
        number: int,
    ) -> web.StreamResponse:
        fmt = route.fmt
        if reply.kind == "stream_error":
            return self._json(500, fmt.reply_error(reply, 500), number, reply.headers, fmt)
        call = fmt.embed_call(route, body)
        if not call.model:
            call = dataclasses.replace(call, model=self.model)
        data = fmt.embed_body(call)
        return await self._send_body(request, reply, data, number, fmt, fmt.malformed_embeddings)

    async def _send_body(
        self,
        request: web.BaseRequest,
        reply: Reply,
        data: bytes,
        number: int,
        fmt: WireFormat,
        malformed: bytes,
    ) -> web.StreamResponse:
        """Send a whole JSON body, or the non-streaming form of a fault reply."""
        kind = reply.kind
        if kind == "malformed":
            data = malformed
        elif kind == "nested":
            data = hostile.nested_json(reply.depth)
        elif kind == "truncated":
            data = data[: len(data) // 2]
        elif kind == "endless":
            response = web.StreamResponse(headers=self._headers(_JSON, number, reply.headers, fmt))
            await response.prepare(request)
            await self._endless(response, b'{"content":"')
        elif kind in ("reset", "stall"):  # after_chunks > 0: headers and half the body first
            response = web.StreamResponse(headers=self._headers(_JSON, number, reply.headers, fmt))
            response.content_length = len(data)
            await response.prepare(request)
            await response.write(data[: len(data) // 2])
            if kind == "stall":
                await self._park()
            raise _Abort
        return self._json(200, data, number, reply.headers, fmt)

    # -- helpers ---------------------------------------------------------------------

    async def _endless(self, response: web.StreamResponse, head: bytes) -> None:
        """Write ``head`` then filler without a line end until the client hangs up."""
        filler = b"a" * 65536
        try:
            await response.write(head)
            while True:  # each write waits for the client to read (flow control)
                await response.write(filler)
        except ConnectionError:
            raise _Abort from None

    def _headers(
        self,
        content_type: str,
        number: int,
        extra: tuple[tuple[str, str], ...] = (),
        fmt: WireFormat = OPENAI,
    ) -> CIMultiDict[str]:
        headers = CIMultiDict({"Content-Type": content_type, **fmt.headers(number)})
        if content_type == _SSE:
            headers["Cache-Control"] = "no-cache"
        if extra:
            headers.update(extra)
        return headers

    def _json(
        self,
        status: int,
        data: bytes,
        number: int,
        extra: tuple[tuple[str, str], ...] = (),
        fmt: WireFormat = OPENAI,
    ) -> web.Response:
        headers = self._headers(_JSON, number, extra, fmt)
        return web.Response(status=status, body=data, headers=headers)

    def _next_call_id(self, fmt: WireFormat) -> str:
        self._call_count += 1
        return f"{fmt.call_prefix}{self._call_count}"

    async def _park(self, seconds: float | None = None) -> None:
        """Sleep `seconds` (forever if None), cut short by `close()`, which raises `_Abort`."""
        if self._closing:
            raise _Abort
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        timer = None if seconds is None else loop.call_later(seconds, _resolve, future)
        self._parked.add(future)
        try:
            await future
        finally:
            self._parked.discard(future)
            if timer is not None:
                timer.cancel()
        if self._closing:
            raise _Abort
