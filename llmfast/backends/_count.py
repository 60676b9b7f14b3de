"""The providers' token-counting endpoints: posting a count request and reading its
answer (Anthropic ``/v1/messages/count_tokens``, Gemini ``models/{model}:countTokens``).

A backend that offers one has a ``count_tokens(request) -> int`` method (the
[`TokenCounter`][llmfast.tokens.TokenCounter] capability) built from these; errors are
mapped as a chat call's are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any

import msgspec

from llmfast.backends._http import decode
from llmfast.backends._intake import read_body
from llmfast.backends._respond import JSONBackend, _status_error
from llmfast.transport import Request

__all__ = [
    "anthropic_count",
    "count_body",
    "gemini_count",
    "gemini_count_body",
    "post_count",
]

_Count = Annotated[int, msgspec.Meta(ge=0)]
_COUNT_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers")
"""What ``/v1/messages/count_tokens`` accepts of a Messages body (it refuses the rest,
``max_tokens`` included)."""


class _AnthropicCount(msgspec.Struct):
    input_tokens: _Count


class _GeminiCount(msgspec.Struct):
    totalTokens: _Count = 0  # proto3 JSON leaves a zero out


_decode_anthropic = msgspec.json.Decoder(_AnthropicCount).decode
_decode_gemini = msgspec.json.Decoder(_GeminiCount).decode


def anthropic_count(raw: bytes) -> int:
    """``{"input_tokens": N}`` → N."""
    return decode(_decode_anthropic, raw, "Anthropic token count").input_tokens


def gemini_count(raw: bytes) -> int:
    """``{"totalTokens": N, ...}`` → N."""
    return decode(_decode_gemini, raw, "Gemini token count").totalTokens


def count_body(wire: Mapping[str, Any]) -> dict[str, Any]:
    """A Messages API body cut down to what ``count_tokens`` accepts."""
    return {name: wire[name] for name in _COUNT_FIELDS if name in wire}


def gemini_count_body(model: str, wire: Mapping[str, Any]) -> dict[str, Any]:
    """A ``countTokens`` body: the whole ``generateContent`` request, so that the system
    instruction and tools are counted too."""
    name = "models/" + model.removeprefix("models/")
    return {"generateContentRequest": {"model": name, **wire}}


async def post_count(
    backend: JSONBackend,
    request: Request,
    target: Any,
    data: bytes,
    decoder: Callable[[bytes], int],
) -> int:
    """POST a count request through ``backend`` (its headers, pool and the request's
    deadline) and decode the count; an error status raises its ``APIStatusError``."""
    headers: Mapping[str, str] = backend._headers
    if request.headers is not None:
        headers = {**headers, **request.headers}
    resp = await backend.post(request, target, data, headers)
    try:
        if resp.status >= 300:
            raise await _status_error(backend, resp, request.deadline)
        raw = await read_body(resp, backend.pool.config.max_body_bytes, request.deadline)
    except BaseException:
        resp.close()
        raise
    resp.release()
    return decoder(raw)
