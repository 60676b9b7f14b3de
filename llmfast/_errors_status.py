"""HTTP statuses and error bodies -> [llmfast.errors][] classes, and ``retry-after``
(import them from there)."""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from typing import Any

from llmfast._error_body import (
    error_payload,
    is_context_length,
    is_overloaded,
    is_quota_exhausted,
    message_of,
    status_named_by,
)
from llmfast.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ContextLengthError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    UnprocessableEntityError,
)

_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    529: OverloadedError,
}

_MAX_RETRY_AFTER = 24 * 3600.0


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date).

    Returns ``None`` when neither header is present or parseable. Negative
    values become 0. ``now`` (epoch seconds) is injectable for tests.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            value = float(raw_ms) / 1000.0
        except ValueError:
            pass
        else:
            if math.isfinite(value):
                return min(max(value, 0.0), _MAX_RETRY_AFTER)
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        current = time.time() if now is None else now
        value = when.timestamp() - current
    else:
        if not math.isfinite(value):
            return None
    return min(max(value, 0.0), _MAX_RETRY_AFTER)


def error_for_status(
    status: int,
    body: Any,
    headers: Mapping[str, str],
    *,
    request_id_header: str = "x-request-id",
) -> APIStatusError:
    """Build the right ``APIStatusError`` subclass for an HTTP error response.

    An error body sent with a success status (``{"error": {"code": "overloaded"}}``
    with 200, as some proxies do) gets the class of the status its ``type``/``code``
    names (see ``effective_status``); ``status``, headers and request id stay as sent.
    A body that is not JSON (an HTML error page) becomes a short plain-text message.
    """
    effective = status
    if status < 400:
        effective = status_named_by(error_payload(body)) or 500
    cls = _STATUS_ERRORS.get(effective)
    if cls is None:
        cls = ServerError
    if cls is ServerError and is_overloaded(body):
        cls = OverloadedError
    elif cls is BadRequestError and is_context_length(body):
        cls = ContextLengthError
    elif cls is RateLimitError and is_quota_exhausted(body):
        cls = QuotaExceededError
    return cls(
        status,
        message_of(body),
        body=body,
        request_id=headers.get(request_id_header),
        retry_after=parse_retry_after(headers),
        headers=headers,
        effective_status=effective,
    )
