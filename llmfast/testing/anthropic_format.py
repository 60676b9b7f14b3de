"""The Anthropic Messages API (`POST /v1/messages`) as the mock server writes it.

Streams follow the real event sequence: `message_start`, a `thinking` block
(`thinking_delta`s and a `signature_delta`) when the reply has reasoning, `ping`, a
`text` block of `text_delta`s, one `tool_use` block per call with `input_json_delta`
fragments, `message_delta` (stop reason and usage) and `message_stop`. Errors are
`{"type": "error", "error": {"type", "message"}}` bodies and `error` events.
"""

from __future__ import annotations

from typing import Any

from . import _payloads as p
from .formats import Answer, BadRequest, ChatCall, Route, StreamPlan, WireFormat
from .replies import ErrorSpec, Reply, split_tokens

__all__ = ["ANTHROPIC", "AnthropicFormat"]

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (name.encode(), p.ENCODER.encode(payload))


def _delta(index: int, delta: dict[str, Any]) -> bytes:
    return _event(
        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    )


def _start(index: int, block: dict[str, Any]) -> bytes:
    return _event(
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": block},
    )


def _stop(index: int) -> bytes:
    return _event("content_block_stop", {"type": "content_block_stop", "index": index})


def _error_type(status: int, error: ErrorSpec) -> str:
    if error.type is not None:
        return error.type
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


class AnthropicFormat(WireFormat):
    """Anthropic Messages bodies, SSE events and errors."""

    name = "anthropic"
    call_prefix = "toolu_mock"
    bad_event = b"event: content_block_delta\ndata: {not json}\n\n"
    keepalive = b'event: ping\ndata: {"type": "ping"}\n\n'  # Anthropic's own keep-alive
    malformed_chat = b'{"id": "msg_malformed", "type": "message", "content": [}'
    PING = b'event: ping\ndata: {"type": "ping"}\n\n'
    STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'

    def error_body(self, status: int, error: ErrorSpec) -> bytes:
        body = {
            "type": "error",
            "error": {"type": _error_type(status, error), "message": error.message},
        }
        return p.ENCODER.encode(body)

    def stream_error(self, reply: Reply) -> bytes:
        assert reply.error_spec is not None
        error = {"type": _error_type(500, reply.error_spec), "message": reply.error_spec.message}
        return _event("error", {"type": "error", "error": error})

    def headers(self, number: int) -> dict[str, str]:
        return {"x-request-id": f"req_{number}", "request-id": f"req_{number}"}

    def chat_call(self, route: Route, body: dict[str, Any]) -> ChatCall:
        if not isinstance(body.get("max_tokens"), int):
            raise BadRequest("max_tokens: Field required")
        messages = body.get("messages")
        if not isinstance(messages, list):
            raise BadRequest("messages: Field required")
        model = body.get("model")
        system = body.get("system")
        system_tokens = p.count_words(p.text_of(system)) if system is not None else 0
        return ChatCall(
            stream=body.get("stream") is True,
            model=model if isinstance(model, str) else "",
            n=1,
            user_text=p.last_user_text(messages),
            prompt_tokens=p.prompt_tokens(messages) + system_tokens,
            body=body,
        )

    def _usage(self, call: ChatCall, output: int, answer: Answer) -> dict[str, int]:
        read, write = answer.cached_tokens, answer.cache_write_tokens
        return {  # cache tokens are reported beside input_tokens, not in it
            "input_tokens": call.prompt_tokens - read - write,
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
            "output_tokens": output,
        }

    def _message(self, call: ChatCall, answer: Answer, content: list[Any]) -> dict[str, Any]:
        reason = answer.finish_reason
        return {
            "id": f"msg_mock{answer.number}",
            "type": "message",
            "role": "assistant",
            "model": call.model,
            "content": content,
            "stop_reason": None if reason is None else STOP_REASONS.get(reason, reason),
            "stop_sequence": None,
            "usage": self._usage(call, answer.completion_tokens, answer),
        }

    def chat_body(self, call: ChatCall, answer: Answer) -> bytes:
        content: list[dict[str, Any]] = []
        if answer.reasoning is not None:
            content.append(
                {"type": "thinking", "thinking": answer.reasoning, "signature": _signature(answer)}
            )
        if answer.text is not None:
            content.append({"type": "text", "text": answer.text})
        content.extend(
            {
                "type": "tool_use",
                "id": ident,
                "name": c.name,
                "input": p.arguments_object(c.arguments),
            }
            for c, ident in zip(answer.calls, answer.ids, strict=True)
        )
        return p.ENCODER.encode(self._message(call, answer, content))

    def chat_stream(self, call: ChatCall, answer: Answer) -> StreamPlan:
        start = self._message(call, answer, [])
        start["stop_reason"] = None
        start["usage"] = self._usage(call, 1, answer)
        events = [_event("message_start", {"type": "message_start", "message": start})]
        index = 0
        if answer.reasoning is not None:
            events.append(_start(index, {"type": "thinking", "thinking": "", "signature": ""}))
            events.append(self.PING)
            events += [
                _delta(index, {"type": "thinking_delta", "thinking": piece})
                for piece in split_tokens(answer.reasoning)
            ]
            events.append(
                _delta(index, {"type": "signature_delta", "signature": _signature(answer)})
            )
            events.append(_stop(index))
            index += 1
        content_start = len(events) + 1
        if answer.text is not None:
            events.append(_start(index, {"type": "text", "text": ""}))
            if index == 0:
                events.append(self.PING)
                content_start += 1
            events += [
                _delta(index, {"type": "text_delta", "text": piece}) for piece in answer.pieces
            ]
            events.append(_stop(index))
            index += 1
        for tool, ident in zip(answer.calls, answer.ids, strict=True):
            block = {"type": "tool_use", "id": ident, "name": tool.name, "input": {}}
            events.append(_start(index, block))
            if index == 0:
                events.append(self.PING)
            events += [
                _delta(index, {"type": "input_json_delta", "partial_json": fragment})
                for fragment in ["", *p.fragments(tool.arguments)]
            ]
            events.append(_stop(index))
            index += 1
        reason = answer.finish_reason
        events.append(
            _event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": None if reason is None else STOP_REASONS.get(reason, reason),
                        "stop_sequence": None,
                    },
                    "usage": {"output_tokens": answer.completion_tokens},
                },
            )
        )
        return StreamPlan(events, self.STOP, content_start, 1)


def _signature(answer: Answer) -> str:
    return f"sig_mock{answer.number}"


ANTHROPIC = AnthropicFormat()
