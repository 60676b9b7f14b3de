"""Ollama's native API (`POST /api/chat`, `POST /api/embed`) as the mock server writes it.

Streams are NDJSON: one `{"message": ..., "done": false}` line per reasoning piece
(`thinking`), per text piece and for the tool calls (all in one line, arguments as
objects), then a `done: true` line with `done_reason` and the token counts. Errors are
`{"error": "..."}` bodies and lines.
"""

from __future__ import annotations

import time
from typing import Any

from . import _payloads as p
from .formats import (
    Answer,
    BadRequest,
    ChatCall,
    EmbedCall,
    Route,
    StreamPlan,
    WireFormat,
    int_param,
    texts_of,
)
from .replies import ErrorSpec, Reply, split_tokens

__all__ = ["OLLAMA", "OllamaFormat"]

DONE_REASONS = {"tool_calls": "stop", "content_filter": "stop"}
_DURATIONS = {"total_duration": 5_000_000, "load_duration": 1_000_000}


def _iso(created: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(created))


class OllamaFormat(WireFormat):
    """Ollama `/api/chat` and `/api/embed` bodies, NDJSON lines and errors."""

    name = "ollama"
    stream_type = "application/x-ndjson"
    bad_event = b"{not json}\n"
    keepalive = b"\n"  # a blank NDJSON line
    malformed_chat = b'{"model": "m", "message": {"role": "assistant", "content": '
    malformed_embeddings = b'{"model": "m", "embeddings": [[0.1, '

    def error_body(self, status: int, error: ErrorSpec) -> bytes:
        return p.ENCODER.encode({"error": error.message})

    def stream_error(self, reply: Reply) -> bytes:
        assert reply.error_spec is not None
        return self.error_body(500, reply.error_spec) + b"\n"

    def chat_call(self, route: Route, body: dict[str, Any]) -> ChatCall:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("model is required")
        messages = body.get("messages")
        return ChatCall(
            stream=body.get("stream", True) is not False,  # Ollama streams by default
            model=model,
            n=1,
            user_text=p.last_user_text(messages),
            prompt_tokens=p.prompt_tokens(messages),
            body=body,
        )

    def _object(
        self, call: ChatCall, answer: Answer, message: dict[str, Any], done: bool
    ) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "model": call.model,
            "created_at": _iso(answer.created),
            "message": {"role": "assistant", **message},
        }
        reason = answer.finish_reason
        if done and reason is not None:
            obj["done_reason"] = DONE_REASONS.get(reason, reason)
            obj["done"] = True
            obj.update(_DURATIONS)
            obj["prompt_eval_count"] = call.prompt_tokens
            obj["prompt_eval_duration"] = 1_000_000
            obj["eval_count"] = answer.completion_tokens
            obj["eval_duration"] = 3_000_000
        else:
            obj["done"] = False
        return obj

    def _line(self, call: ChatCall, answer: Answer, message: dict[str, Any], done: bool) -> bytes:
        return p.ENCODER.encode(self._object(call, answer, message, done)) + b"\n"

    def _calls(self, answer: Answer) -> list[dict[str, Any]]:
        return [
            {"function": {"name": c.name, "arguments": p.arguments_object(c.arguments)}}
            for c in answer.calls
        ]

    def chat_body(self, call: ChatCall, answer: Answer) -> bytes:
        message: dict[str, Any] = {"content": answer.text or ""}
        if answer.reasoning is not None:
            message["thinking"] = answer.reasoning
        if answer.calls:
            message["tool_calls"] = self._calls(answer)
        return p.ENCODER.encode(self._object(call, answer, message, done=True))

    def chat_stream(self, call: ChatCall, answer: Answer) -> StreamPlan:
        events = []
        if answer.reasoning is not None:
            events += [
                self._line(call, answer, {"content": "", "thinking": piece}, done=False)
                for piece in split_tokens(answer.reasoning)
            ]
        start = len(events)
        events += [
            self._line(call, answer, {"content": piece}, done=False) for piece in answer.pieces
        ]
        if answer.calls:
            message = {"content": "", "tool_calls": self._calls(answer)}
            events.append(self._line(call, answer, message, done=False))
        end = self._line(call, answer, {"content": ""}, done=True)
        return StreamPlan(events, end, start, 1)

    def unfinished_end(self, plan: StreamPlan) -> bytes:
        return b""  # the done line is the finish: the body just ends

    def embed_call(self, route: Route, body: dict[str, Any]) -> EmbedCall:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("model is required")
        return EmbedCall(
            texts=texts_of(body.get("input")),
            dimensions=int_param(body, "dimensions", 8, 65536),
            model=model,
        )

    def embed_body(self, call: EmbedCall) -> bytes:
        vectors = [p.embedding(text, call.dimensions) for text in call.texts]
        tokens = sum(p.count_words(text) for text in call.texts)
        body = {"model": call.model, "embeddings": vectors, **_DURATIONS}
        return p.ENCODER.encode({**body, "prompt_eval_count": tokens})


OLLAMA = OllamaFormat()
