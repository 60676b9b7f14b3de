"""How the gateway answers when a call fails: the HTTP status and the provider's error
shape, never a traceback, and never an upstream key.

Upstream status errors keep their status (a 429 keeps its ``retry-after``), except an
upstream 401/403: the gateway's own credentials were refused, which is not the
caller's fault, so it is a 502. A tenant over its quota gets 429; an open circuit
503; an upstream that timed out 504; one that broke or sent garbage 502.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable

import msgspec

from llmfast.errors import (
    APIStatusError,
    AuthenticationError,
    BudgetExceededError,
    CircuitOpenError,
    ConfigurationError,
    DecodeError,
    LLMFastError,
    PermissionDeniedError,
    QueueFullError,
    QueueTimeout,
    RequestTooLargeError,
    StreamError,
    Timeout,
    TransportError,
)

__all__ = ["Failure", "failure_of", "openai_error"]

_log = logging.getLogger("llmfast.gateway")
_encode = msgspec.json.Encoder().encode

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_exceeded",
}


class Failure(msgspec.Struct, frozen=True):
    """A failed call as the gateway answers it."""

    status: int
    message: str
    code: str | None = None
    retry_after: float | None = None


class Scrubber:
    """Removes the upstream keys from any text the gateway sends or logs."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text


def failure_of(exc: BaseException, scrub: Scrubber) -> Failure:
    """The answer to a call that raised ``exc``."""
    if isinstance(exc, APIStatusError):
        if isinstance(exc, AuthenticationError | PermissionDeniedError):
            return Failure(
                502, "the upstream provider refused the gateway's credentials", "upstream_auth"
            )
        status = exc.effective_status if exc.effective_status >= 400 else 500
        code = _code_of(exc)
        return Failure(status, scrub(exc.message or str(exc)), code, exc.retry_after)
    if isinstance(exc, BudgetExceededError):
        message = f"this key's budget is spent ({exc.unit}); it resets "
        message += "never" if exc.resets_in is None else f"in {exc.resets_in:.0f} s"
        return Failure(429, message, "budget_exceeded", exc.resets_in)
    if isinstance(exc, QueueTimeout | QueueFullError):
        return Failure(
            429, "this key is over its rate limit; retry later", "rate_limit_exceeded", 1.0
        )
    if isinstance(exc, CircuitOpenError):
        return Failure(
            503,
            "every deployment of this model is unavailable; retry later",
            "upstream_unavailable",
            _seconds_until(exc.retry_at),
        )
    if isinstance(exc, RequestTooLargeError):
        return Failure(413, scrub(str(exc)), "request_too_large")
    if isinstance(exc, ConfigurationError):
        return Failure(400, scrub(str(exc)), "invalid_request")
    if isinstance(exc, Timeout):
        return Failure(504, "the upstream provider did not answer in time", "upstream_timeout")
    if isinstance(exc, TransportError | DecodeError | StreamError):
        return Failure(502, scrub(f"the upstream call failed: {exc}"), "upstream_error")
    if isinstance(exc, LLMFastError):
        return Failure(500, scrub(str(exc)), "gateway_error")
    _log.error("unexpected failure in the gateway: %s", scrub(repr(exc)))
    return Failure(500, "internal error in the gateway", "gateway_error")


def openai_error(failure: Failure) -> bytes:
    """``failure`` as an OpenAI error body."""
    kind = _OPENAI_TYPES.get(
        failure.status, "api_error" if failure.status >= 500 else "invalid_request_error"
    )
    return _encode(
        {"error": {"message": failure.message, "type": kind, "param": None, "code": failure.code}}
    )


def retry_after_header(failure: Failure) -> dict[str, str]:
    if failure.retry_after is None:
        return {}
    return {"retry-after": str(max(1, math.ceil(failure.retry_after)))}


def _code_of(exc: APIStatusError) -> str | None:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            code = error.get("code") or error.get("type")
            return code if isinstance(code, str) else None
    return None


def _seconds_until(moment: float | None) -> float | None:
    return None if moment is None else max(0.0, moment - time.monotonic())
