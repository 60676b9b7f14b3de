"""Which wire format and endpoint a request path is."""

from __future__ import annotations

import re

from .anthropic_format import ANTHROPIC
from .formats import OPENAI, BadRequest, Route, WireFormat
from .gemini_format import GEMINI
from .ollama_format import OLLAMA
from .responses_format import RESPONSES

__all__ = ["format_of", "resolve"]

_FIXED = {
    "/v1/chat/completions": Route(OPENAI, "chat"),
    "/v1/embeddings": Route(OPENAI, "embed"),
    "/v1/responses": Route(RESPONSES, "chat"),
    "/v1/messages": Route(ANTHROPIC, "chat"),
    "/v1/messages/count_tokens": Route(ANTHROPIC, "count"),
    "/api/chat": Route(OLLAMA, "chat"),
    "/api/embed": Route(OLLAMA, "embed"),
}
_GEMINI_PATH = re.compile(r"/v1beta/models/(.+):(\w+)")


def resolve(method: str, path: str, query: str) -> Route | None:
    """The route of a POST request, or `None` for an unknown one."""
    if method != "POST":
        return None
    route = _FIXED.get(path)
    if route is not None:
        return route
    match = _GEMINI_PATH.fullmatch(path)
    if match is None:
        return None
    model, action = match.groups()
    if action == "generateContent":
        return Route(GEMINI, "chat", model, stream=False)
    if action == "streamGenerateContent":
        if "alt=sse" not in query.split("&"):
            raise BadRequest("the mock server streams Gemini responses with ?alt=sse only")
        return Route(GEMINI, "chat", model, stream=True)
    if action == "countTokens":
        return Route(GEMINI, "count", model)
    if action in ("embedContent", "batchEmbedContents"):
        return Route(GEMINI, "embed", model, batch=action == "batchEmbedContents")
    return None


def format_of(path: str) -> WireFormat:
    """The format a path belongs to (for the error body of an unknown or bad request)."""
    if path.startswith("/api/"):
        return OLLAMA
    if path.startswith("/v1beta/"):
        return GEMINI
    if path.startswith("/v1/messages"):
        return ANTHROPIC
    return OPENAI
