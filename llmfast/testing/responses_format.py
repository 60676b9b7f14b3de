"""The OpenAI Responses API (`POST /v1/responses`) as the mock server writes it.

Streams follow the real event sequence, every event with its `sequence_number`:
`response.created`, `response.in_progress`, a `reasoning` item (summary deltas) when the
reply has reasoning, a `message` item (`content_part.added`, `output_text.delta`s,
`output_text.done`, `content_part.done`), one `function_call` item per call (arguments
deltas), then `response.completed` (or `response.incomplete`). Errors are OpenAI error
bodies and `error` events. Every response is kept by the server's
[`ResponsesStore`][llmfast.testing.responses_store.ResponsesStore] (unless `store` is
false), for `previous_response_id`, retrieval, resuming and cancelling.
"""

from __future__ import annotations

from typing import Any

from . import _payloads as p
from .formats import Answer, BadRequest, ChatCall, Route, StreamPlan, WireFormat
from .replies import ErrorSpec, Reply, split_tokens
from .responses_store import Stored, current_store

__all__ = ["RESPONSES", "ResponsesFormat"]

INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _event(payload: dict[str, Any]) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (payload["type"].encode(), p.ENCODER.encode(payload))


def _input_text(item: Any) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") in ("input_text", "text", "output_text")
        )
    return ""


def _user_text(items: Any) -> str | None:
    if isinstance(items, str):
        return items
    for item in reversed(items):
        if isinstance(item, dict) and item.get("role") == "user":
            return _input_text(item)
    return None


class _Builder:
    """Numbers a stream's events as they are made."""

    def __init__(self) -> None:
        self.events: list[bytes] = []

    def add(self, payload: dict[str, Any]) -> None:
        payload["sequence_number"] = len(self.events)
        self.events.append(_event(payload))


class ResponsesFormat(WireFormat):
    """Responses API bodies, SSE events and errors."""

    name = "openai-responses"
    call_prefix = "call_mock"
    bad_event = b"event: response.output_text.delta\ndata: {not json}\n\n"
    malformed_chat = b'{"id": "resp_malformed", "object": "response", "output": [}'

    def error_body(self, status: int, error: ErrorSpec) -> bytes:
        default = "server_error" if status >= 500 else "invalid_request_error"
        return p.error_body(error.message, error.type or default, error.code)

    def stream_error(self, reply: Reply) -> bytes:
        assert reply.error_spec is not None
        spec = reply.error_spec
        error = {"type": spec.type or "server_error", "code": spec.code, "message": spec.message}
        return _event({"type": "error", "error": error, "param": None})

    def unfinished_end(self, plan: StreamPlan) -> bytes:
        return b""  # the body ends without response.completed

    def chat_call(self, route: Route, body: dict[str, Any]) -> ChatCall:
        items = body.get("input")
        if not isinstance(items, (str, list)):
            raise BadRequest("input: Field required")
        store = current_store()
        previous = body.get("previous_response_id")
        user_text = _user_text(items)
        if previous is not None:
            held = store.get(previous) if store is not None else None
            if held is None:
                raise BadRequest(f"Previous response with id '{previous}' not found.")
            if user_text is None:
                user_text = held.user_text
        model = body.get("model")
        words = p.count_words(body.get("instructions") or "") + sum(
            p.count_words(_input_text(i)) for i in items if isinstance(i, dict)
        )
        return ChatCall(
            stream=body.get("stream") is True,
            model=model if isinstance(model, str) else "",
            n=1,
            user_text=user_text or "",
            prompt_tokens=p.count_words(items) if isinstance(items, str) else words,
            body=body,
        )

    def _response(
        self, call: ChatCall, answer: Answer, status: str, output: list[Any]
    ) -> dict[str, Any]:
        body = call.body
        reason = answer.finish_reason
        reasoning_tokens = p.count_words(answer.reasoning or "")
        response: dict[str, Any] = {
            "id": f"resp_mock{answer.number}",
            "object": "response",
            "created_at": answer.created,
            "status": status,
            "background": body.get("background") is True,
            "error": None,
            "incomplete_details": None,
            "model": call.model,
            "output": output,
            "previous_response_id": body.get("previous_response_id"),
            "store": body.get("store") is not False,
            "metadata": body.get("metadata") or {},
            "usage": None,
        }
        if status in ("completed", "incomplete"):
            response["usage"] = {
                "input_tokens": call.prompt_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": answer.completion_tokens,
                "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
                "total_tokens": call.prompt_tokens + answer.completion_tokens,
            }
        if status == "incomplete":
            response["incomplete_details"] = {"reason": INCOMPLETE.get(reason or "", reason)}
        return response

    def _status(self, answer: Answer) -> str:
        reason = answer.finish_reason
        return "completed" if reason in ("stop", "tool_calls") else "incomplete"

    def _items(self, call: ChatCall, answer: Answer) -> list[dict[str, Any]]:
        n = answer.number
        items: list[dict[str, Any]] = []
        if answer.reasoning is not None:
            item: dict[str, Any] = {
                "id": f"rs_mock{n}",
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": answer.reasoning}],
            }
            include = call.body.get("include") or ()
            if "reasoning.encrypted_content" in include:
                item["encrypted_content"] = f"enc_mock{n}"
            items.append(item)
        if answer.text is not None:
            items.append(
                {
                    "id": f"msg_mock{n}",
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "annotations": [], "text": answer.text}],
                }
            )
        items.extend(
            {
                "id": f"fc_mock{n}_{k}",
                "type": "function_call",
                "status": "completed",
                "call_id": ident,
                "name": c.name,
                "arguments": c.arguments,
            }
            for k, (c, ident) in enumerate(zip(answer.calls, answer.ids, strict=True))
        )
        return items

    def chat_body(self, call: ChatCall, answer: Answer) -> bytes:
        final = self._response(call, answer, self._status(answer), self._items(call, answer))
        if answer.finish_reason is None:
            final["status"] = "incomplete"
        background = call.body.get("background") is True
        stored = self._keep(call, final, [], b"")
        if background and stored is not None:
            return p.ENCODER.encode({**final, "status": "queued", "output": [], "usage": None})
        return p.ENCODER.encode(final)

    def chat_stream(self, call: ChatCall, answer: Answer) -> StreamPlan:
        status = self._status(answer)
        build = _Builder()
        opening = self._response(call, answer, "in_progress", [])
        build.add({"type": "response.created", "response": opening})
        build.add({"type": "response.in_progress", "response": opening})
        items = self._items(call, answer)
        content_start = len(build.events)
        for index, item in enumerate(items):
            kind = item["type"]
            added = {**item, "status": "in_progress"}
            if kind == "reasoning":
                added["summary"] = []
            elif kind == "message":
                added["content"] = []
            elif kind == "function_call":
                added["arguments"] = ""
            build.add({"type": "response.output_item.added", "output_index": index, "item": added})
            where = {"item_id": item["id"], "output_index": index}
            if kind == "reasoning":
                for piece in split_tokens(answer.reasoning or ""):
                    build.add(
                        {"type": "response.reasoning_summary_text.delta", **where, "delta": piece}
                    )
            elif kind == "message":
                part = {"type": "output_text", "annotations": [], "text": ""}
                where["content_index"] = 0
                build.add({"type": "response.content_part.added", **where, "part": part})
                content_start = len(build.events)
                for piece in answer.pieces:
                    build.add({"type": "response.output_text.delta", **where, "delta": piece})
                text = answer.text or ""
                build.add({"type": "response.output_text.done", **where, "text": text})
                build.add(
                    {"type": "response.content_part.done", **where, "part": {**part, "text": text}}
                )
            else:
                kind = "response.function_call_arguments.delta"
                for fragment in p.fragments(item["arguments"]):
                    build.add({"type": kind, **where, "delta": fragment})
                build.add(
                    {
                        "type": "response.function_call_arguments.done",
                        **where,
                        "arguments": item["arguments"],
                    }
                )
            build.add({"type": "response.output_item.done", "output_index": index, "item": item})
        final = self._response(call, answer, status, items)
        build.add({"type": f"response.{status}", "response": final})
        events = build.events
        end = events.pop()
        self._keep(call, final, events, end)
        return StreamPlan(events, end, content_start, 1)

    def _keep(
        self, call: ChatCall, final: dict[str, Any], events: list[bytes], end: bytes
    ) -> Stored | None:
        store = current_store()
        if store is None or call.body.get("store") is False:
            return None
        stored = Stored(
            response=final,
            events=[*events, end] if end else [],
            background=call.body.get("background") is True,
            user_text=call.user_text,
        )
        store.put(stored)
        return stored


RESPONSES = ResponsesFormat()
