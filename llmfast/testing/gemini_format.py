"""The Gemini API (`/v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse`,
`:embedContent`, `:batchEmbedContents`) as the mock server writes it.

Streams are SSE framed with CRLF, one `GenerateContentResponse` per event: `thought`
parts for reasoning, text parts, one event with every `functionCall` part, and a last
event with `finishReason` (and a `thoughtSignature` when there was reasoning). Errors
are `{"error": {"code", "message", "status"}}` bodies and events.
"""

from __future__ import annotations

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
    texts_of,
)
from .replies import ErrorSpec, Reply, split_tokens

__all__ = ["GEMINI", "GeminiFormat"]

FINISH_REASONS = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",
    "content_filter": "SAFETY",
}
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _status_name(status: int, error: ErrorSpec) -> str:
    if error.type is not None:
        return error.type
    return STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT")


def _text(parts: Any) -> str:
    if not isinstance(parts, list):
        return ""
    return "".join(
        part["text"]
        for part in parts
        if isinstance(part, dict) and isinstance(part.get("text"), str)
    )


class GeminiFormat(WireFormat):
    """Gemini request and response bodies, CRLF-framed SSE events and errors."""

    name = "gemini"
    bad_event = b"data: {not json}\r\n\r\n"
    keepalive = b": keep-alive\r\n\r\n"
    malformed_chat = b'{"candidates": [{"content": {"parts": [{"text": '
    malformed_embeddings = b'{"embedding": {"values": [0.1, '

    def error_body(self, status: int, error: ErrorSpec) -> bytes:
        body = {"code": status, "message": error.message, "status": _status_name(status, error)}
        return p.ENCODER.encode({"error": body})

    def stream_error(self, reply: Reply) -> bytes:
        assert reply.error_spec is not None
        code = reply.error_spec.code
        status = int(code) if code is not None and code.isdigit() else 500
        return b"data: " + self.error_body(status, reply.error_spec) + b"\r\n\r\n"

    def chat_call(self, route: Route, body: dict[str, Any]) -> ChatCall:
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            raise BadRequest("* GenerateContentRequest.contents: contents is not specified")
        config = body.get("generationConfig")
        n = config.get("candidateCount", 1) if isinstance(config, dict) else 1
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 8:
            raise BadRequest("candidateCount must be in 1..8")
        user_text = ""
        for content in reversed(contents):
            if isinstance(content, dict) and content.get("role", "user") == "user":
                user_text = _text(content.get("parts"))
                break
        texts = [_text(c.get("parts")) for c in contents if isinstance(c, dict)]
        system = body.get("systemInstruction")
        if isinstance(system, dict):
            texts.append(_text(system.get("parts")))
        assert route.model is not None
        return ChatCall(
            stream=bool(route.stream),
            model=route.model,
            n=n,
            user_text=user_text,
            prompt_tokens=sum(p.count_words(text) for text in texts),
            body=body,
        )

    def _usage(self, call: ChatCall, answer: Answer) -> dict[str, int]:
        thoughts = p.count_words(answer.reasoning) if answer.reasoning is not None else 0
        candidates = (answer.completion_tokens - thoughts) * call.n
        usage = {
            "promptTokenCount": call.prompt_tokens,
            "candidatesTokenCount": candidates,
            "totalTokenCount": call.prompt_tokens + candidates + thoughts * call.n,
        }
        if answer.reasoning is not None:
            usage["thoughtsTokenCount"] = thoughts * call.n
        if answer.cached_tokens:  # part of promptTokenCount
            usage["cachedContentTokenCount"] = answer.cached_tokens
        return usage

    def _response(
        self, call: ChatCall, answer: Answer, parts: list[dict[str, Any]], finish: bool
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
        reason = answer.finish_reason
        if finish and reason is not None:
            candidate["finishReason"] = FINISH_REASONS.get(reason, reason)
        return {
            "candidates": [{**candidate, "index": i} for i in range(call.n)],
            "usageMetadata": self._usage(call, answer),
            "modelVersion": call.model,
            "responseId": f"resp_mock{answer.number}",
        }

    def _event(self, call: ChatCall, answer: Answer, parts: list[Any], finish: bool) -> bytes:
        return (
            b"data: " + p.ENCODER.encode(self._response(call, answer, parts, finish)) + b"\r\n\r\n"
        )

    def _calls(self, answer: Answer) -> list[dict[str, Any]]:
        return [
            {"functionCall": {"name": c.name, "args": p.arguments_object(c.arguments)}}
            for c in answer.calls
        ]

    def chat_body(self, call: ChatCall, answer: Answer) -> bytes:
        parts: list[dict[str, Any]] = []
        if answer.reasoning is not None:
            parts.append({"text": answer.reasoning, "thought": True})
        if answer.text is not None:
            parts.append({"text": answer.text})
        parts += self._calls(answer)
        if answer.reasoning is not None:
            parts[-1] = {**parts[-1], "thoughtSignature": f"sig_mock{answer.number}"}
        return p.ENCODER.encode(self._response(call, answer, parts, finish=True))

    def chat_stream(self, call: ChatCall, answer: Answer) -> StreamPlan:
        events = []
        if answer.reasoning is not None:
            events += [
                self._event(call, answer, [{"text": piece, "thought": True}], finish=False)
                for piece in split_tokens(answer.reasoning)
            ]
        start = len(events)
        events += [self._event(call, answer, [{"text": x}], finish=False) for x in answer.pieces]
        if answer.calls:
            events.append(self._event(call, answer, self._calls(answer), finish=False))
        last: dict[str, Any] = {"text": ""}
        if answer.reasoning is not None:
            last["thoughtSignature"] = f"sig_mock{answer.number}"
        end = self._event(call, answer, [last], finish=True)
        return StreamPlan(events, end, start, 1)

    def unfinished_end(self, plan: StreamPlan) -> bytes:
        return b""  # no end event: the body just ends

    def embed_call(self, route: Route, body: dict[str, Any]) -> EmbedCall:
        requests = body.get("requests") if route.batch else [body]
        if not isinstance(requests, list) or not requests:
            raise BadRequest("* BatchEmbedContentsRequest.requests: requests is not specified")
        texts = []
        for request in requests:
            content = request.get("content") if isinstance(request, dict) else None
            if not isinstance(content, dict):
                raise BadRequest("* EmbedContentRequest.content: content is not specified")
            texts.append(_text(content.get("parts")))
        dimensions = requests[0].get("outputDimensionality", 8)
        if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1:
            raise BadRequest("outputDimensionality must be a positive integer")
        return EmbedCall(texts_of(texts), dimensions, route.model or "", batch=route.batch)

    def embed_body(self, call: EmbedCall) -> bytes:
        vectors = [{"values": p.embedding(text, call.dimensions)} for text in call.texts]
        body = {"embeddings": vectors} if call.batch else {"embedding": vectors[0]}
        return p.ENCODER.encode(body)


GEMINI = GeminiFormat()
