"""What an error body says, whatever the provider: the status its type or code names,
and a short plain-text excerpt of a body that is not JSON (an HTML error page).

Ground floor, like ``errors``: imports nothing from llmfast.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "EXCERPT_CHARS",
    "QUOTA_CODES",
    "error_payload",
    "excerpt",
    "is_context_length",
    "is_overloaded",
    "is_quota_exhausted",
    "message_of",
    "status_named_by",
]

EXCERPT_CHARS = 500
"""The most characters of a non-JSON body an error message shows."""
QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})
"""OpenAI's codes for an account whose quota or billing limit is used up (sent with
429, like a rate limit, but no wait makes the next attempt succeed)."""

_STATUS_NAMES: dict[str, int] = {
    # OpenAI ``type``/``code`` and look-alikes
    "invalid_request_error": 400,
    "bad_request": 400,
    "context_length_exceeded": 400,
    "string_above_max_length": 400,
    "authentication_error": 401,
    "invalid_api_key": 401,
    "unauthorized": 401,
    "permission_error": 403,
    "permission_denied": 403,
    "forbidden": 403,
    "not_found_error": 404,
    "not_found": 404,
    "model_not_found": 404,
    "conflict": 409,
    "unprocessable_entity": 422,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "rate_limited": 429,
    "too_many_requests": 429,
    "insufficient_quota": 429,
    "server_error": 500,
    "internal_server_error": 500,
    "api_error": 500,
    "service_unavailable": 503,
    "timeout_error": 504,
    "overloaded": 529,
    "overloaded_error": 529,
    # Anthropic's own
    "billing_error": 402,
    "request_too_large": 413,
    # Google's gRPC status names (Gemini ``error.status``)
    "invalid_argument": 400,
    "failed_precondition": 400,
    "out_of_range": 400,
    "unauthenticated": 401,
    "already_exists": 409,
    "aborted": 409,
    "resource_exhausted": 429,
    "cancelled": 499,
    "unknown": 500,
    "internal": 500,
    "data_loss": 500,
    "unimplemented": 501,
    "unavailable": 503,
    "deadline_exceeded": 504,
}
_WORDS = (  # substrings of a type, code or message, most specific first
    ("overloaded", 529),
    ("rate limit", 429),
    ("rate_limit", 429),
    ("too many requests", 429),
    ("context length", 400),
    ("context window", 400),
    ("context_length", 400),
    ("not found", 404),
    ("unauthorized", 401),
    ("api key", 401),
)
_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->|<[^>]*>", re.S | re.I)
_SPACE = re.compile(r"\s+")


def error_payload(body: Any) -> Any:
    """The error inside a decoded body (``body["error"]``), else ``None``.

    Every provider's error shape has one: OpenAI ``{"error": {...}}``, Anthropic
    ``{"type": "error", "error": {...}}``, Gemini ``{"error": {"code", "status"...}}``,
    Ollama ``{"error": "..."}``.
    """
    if isinstance(body, Mapping):
        error = body.get("error")
        if error is not None and error != "" and error != {}:
            return error
    return None


def status_named_by(error: Any) -> int | None:
    """The HTTP status an error payload's ``code``, ``type`` or ``status`` stands for.

    A numeric code in 400..599 (Gemini's ``code``) counts as given; names come from
    OpenAI's, Anthropic's and Google's error vocabularies; a string error (Ollama) is
    matched by its words ("overloaded", "rate limit", "not found"...). ``None`` when
    nothing names a status.
    """
    if isinstance(error, Mapping):
        code = error.get("code")
        if isinstance(code, str) and code.isdigit():
            code = int(code)
        if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
            return code
        names = [error.get(key) for key in ("code", "type", "status")]  # most specific first
        texts = [name.lower() for name in names if isinstance(name, str)]
        for text in texts:
            status = _STATUS_NAMES.get(text)
            if status is not None:
                return status
        message = error.get("message")
        if isinstance(message, str):
            texts.append(message.lower())
        return _by_words(" ".join(texts))
    if isinstance(error, str):
        return _by_words(error.lower())
    return None


def _by_words(text: str) -> int | None:
    for word, status in _WORDS:
        if word in text:
            return status
    return None


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """At most ``limit`` characters of ``text`` as plain text: tags, scripts and
    comments of an HTML page removed, entities unescaped, whitespace collapsed."""
    text = text[: limit * 8]  # bound the work on a huge body before stripping
    if "<" in text:
        text = html.unescape(_TAG.sub(" ", text))
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(value: Any) -> str:
    """A message value as bounded text (never the ``str()`` of a deep structure)."""
    if isinstance(value, str):
        return excerpt(value)
    if isinstance(value, (int, float)):
        return str(value)
    return ""


def message_of(body: Any) -> str:
    """The message of a decoded error body (bounded plain text), or ``""``."""
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, Mapping):
            for key in ("message", "type", "code", "status"):
                text = _text(err.get(key))
                if text:
                    return text
            return ""
        if isinstance(err, str):
            return excerpt(err)
        return _text(body.get("message"))
    if isinstance(body, str):
        return excerpt(body)
    return ""


def _error_fields(body: Any) -> str:
    """The error's type, code and status, lower-cased, for the refinements below."""
    err = body.get("error", body) if isinstance(body, Mapping) else body
    if not isinstance(err, Mapping):
        return ""
    fields = (err.get(key) for key in ("type", "code", "status"))
    return " ".join(field for field in fields if isinstance(field, str)).lower()


def is_overloaded(body: Any) -> bool:
    """True when the error's type, code or status says "overloaded"."""
    return "overloaded" in _error_fields(body)


def is_context_length(body: Any) -> bool:
    """True when the error says the prompt exceeds the model's context."""
    if "context_length" in _error_fields(body):
        return True
    message = message_of(body).lower()
    return "context length" in message or "context window" in message


def is_quota_exhausted(error: Any) -> bool:
    """True when an error body (``{"error": {...}}``) or payload says the account's
    quota or billing limit is used up (its ``code`` or ``type`` is in `QUOTA_CODES`)."""
    if isinstance(error, Mapping):
        inner = error.get("error")
        if isinstance(inner, Mapping):
            error = inner
        fields = (error.get("code"), error.get("type"))
        return any(isinstance(field, str) and field in QUOTA_CODES for field in fields)
    return False
