"""llmfast's errors -> the exceptions pydantic-ai's models raise.

An HTTP status error becomes a [`ModelHTTPError`][pydantic_ai.exceptions.ModelHTTPError]
that is also an instance of its category (``ModelRateLimitError`` for a 429...), as
pydantic-ai's own provider models raise it; network failures become
``ModelConnectionError`` (``ModelTimeoutError`` for timeouts); anything else llmfast
raises becomes a ``ModelAPIError``. The llmfast error is kept as ``__cause__``, so
``except llmfast.errors.RateLimitError`` still works through ``err.__cause__``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic_ai.exceptions import (
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelContextWindowExceededError,
    ModelHTTPError,
    ModelNotFoundError,
    ModelOverloadedError,
    ModelQuotaExceededError,
    ModelRateLimitError,
    ModelRequestRejectedError,
    ModelServerError,
    ModelTimeoutError,
    ModelUnavailableError,
    UserError,
)

from llmfast import errors as e

__all__ = ["model_error"]

_Category = type[
    ModelRateLimitError
    | ModelQuotaExceededError
    | ModelUnavailableError
    | ModelServerError
    | ModelRequestRejectedError
]

# Most specific first (ContextLengthError before BadRequestError...).
_CATEGORIES: tuple[tuple[type[e.APIStatusError], _Category], ...] = (
    (e.RateLimitError, ModelRateLimitError),
    (e.OverloadedError, ModelOverloadedError),
    (e.ContextLengthError, ModelContextWindowExceededError),
    (e.AuthenticationError, ModelAuthenticationError),
    (e.PermissionDeniedError, ModelAuthenticationError),
    (e.NotFoundError, ModelNotFoundError),
    (e.BadRequestError, ModelRequestRejectedError),
    (e.UnprocessableEntityError, ModelRequestRejectedError),
    (e.ConflictError, ModelRequestRejectedError),
)
_BY_STATUS: dict[int, _Category] = {
    402: ModelQuotaExceededError,
    503: ModelUnavailableError,
    529: ModelOverloadedError,
}


def model_error(exc: e.LLMFastError, model_name: str, *, in_stream: bool = False) -> Exception:
    """The pydantic-ai exception standing for ``exc`` (raise it ``from exc``)."""
    if isinstance(exc, e.StreamInterruptedError):
        in_stream = True  # also an instance of its cause's class: mapped by that below
    if isinstance(exc, e.APIStatusError):
        return _status_error(exc, model_name, in_stream)
    if isinstance(exc, e.StreamEventError):
        return _event_error(exc, model_name)
    if isinstance(exc, e.Timeout) and not isinstance(exc, e.QueueTimeout):
        phase: Literal["connect", "read"] = (
            "connect" if isinstance(exc, e.ConnectTimeout) else "read"
        )
        return ModelTimeoutError(model_name, str(exc), phase=phase, in_stream=in_stream)
    if isinstance(exc, e.TransportError):
        phase = "connect" if isinstance(exc, e.ConnectError) else "read"
        return ModelConnectionError(model_name, str(exc), phase=phase, in_stream=in_stream)
    if isinstance(exc, e.CircuitOpenError):
        return ModelUnavailableError(model_name, str(exc))
    if isinstance(exc, e.ConfigurationError):
        return UserError(str(exc))
    return ModelAPIError(model_name, str(exc), in_stream=in_stream)


def _status_error(exc: e.APIStatusError, model_name: str, in_stream: bool) -> ModelHTTPError:
    category = _BY_STATUS.get(exc.effective_status)
    if category is None:
        category = next((c for kind, c in _CATEGORIES if isinstance(exc, kind)), None)
    if category is None:
        category = ModelServerError if exc.effective_status >= 500 else ModelRequestRejectedError
    code, kind = _codes(exc.body)
    return ModelHTTPError.for_category(
        category,
        status_code=exc.effective_status,
        model_name=model_name,
        body=exc.body,
        headers=dict(exc.headers),
        provider_error_code=code,
        provider_error_type=kind,
        retry_after=exc.retry_after,
        in_stream=in_stream,
    )


def _event_error(exc: e.StreamEventError, model_name: str) -> ModelAPIError:
    code, kind = _codes({"error": exc.error})
    if exc.status is not None and exc.status >= 400:
        category = _BY_STATUS.get(exc.status) or (
            ModelRateLimitError
            if exc.status == 429
            else ModelServerError
            if exc.status >= 500
            else ModelRequestRejectedError
        )
        return ModelHTTPError.for_category(
            category,
            status_code=exc.status,
            model_name=model_name,
            body=exc.error,
            provider_error_code=code,
            provider_error_type=kind,
            in_stream=True,
        )
    return ModelAPIError(
        model_name,
        str(exc),
        body=exc.error,
        provider_error_code=code,
        provider_error_type=kind,
        in_stream=True,
    )


def _codes(body: Any) -> tuple[str | None, str | None]:
    """The provider's error ``code`` and ``type`` from an error body, when it has them."""
    error = body.get("error", body) if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return None, None
    code, kind = error.get("code"), error.get("type")
    return (
        None if code is None else str(code),
        None if kind is None else str(kind),
    )
