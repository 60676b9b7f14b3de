"""The token-counting endpoints as [MockServer][llmfast.testing.MockServer] answers
them: Anthropic's ``POST /v1/messages/count_tokens`` (``{"input_tokens": N}``) and
Gemini's ``POST /v1beta/models/{model}:countTokens`` (``{"totalTokens": N, ...}``).

N is the prompt tokens the server would report in the usage of a chat with the same
prompt (its word counts), so a count can be checked against a call's usage. A count
request takes no scripted reply from the queue.
"""

from __future__ import annotations

from typing import Any

from . import _payloads as p
from .formats import BadRequest, Route

__all__ = ["count_answer"]


def count_answer(route: Route, body: dict[str, Any]) -> bytes:
    """The JSON answer to a count request on ``route`` (raises `BadRequest`)."""
    fmt = route.fmt
    if fmt.name == "anthropic":
        if "max_tokens" in body:
            raise BadRequest("max_tokens: Extra inputs are not permitted")
        call = fmt.chat_call(route, {**body, "max_tokens": 1})
        return p.ENCODER.encode({"input_tokens": call.prompt_tokens})
    request = body.get("generateContentRequest")
    if request is not None and "contents" in body:
        raise BadRequest("contents and generateContentRequest are mutually exclusive")
    if request is None:
        request = {"contents": body.get("contents")}
    elif not isinstance(request, dict):
        raise BadRequest("generateContentRequest must be an object")
    tokens = fmt.chat_call(route, request).prompt_tokens
    details = [{"modality": "TEXT", "tokenCount": tokens}]
    return p.ENCODER.encode({"totalTokens": tokens, "promptTokensDetails": details})
