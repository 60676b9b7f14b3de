"""llmfast's errors -> the exceptions pydantic-ai's models raise.

An HTTP status error becomes a `ModelHTTPError`;
on pydantic-ai releases with error categories (2.64 on) it is also an instance of its
category (``ModelRateLimitError`` for a 429...), as pydantic-ai's own provider models
raise it. Network failures become ``ModelConnectionError`` (``ModelTimeoutError`` for
timeouts) where the release has them; anything else llmfast raises becomes a
``ModelAPIError``. The llmfast error is kept as ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic_ai.exceptions as pe
from pydantic_ai.exceptions import ModelAPIError, ModelHTTPError, UserError

from llmfast import errors as e

__all__ = ["model_error"]


def _category(name: str) -> type[ModelAPIError] | None:
    found = getattr(pe, name, None)
    return found if isinstance(found, type) and issubclass(found, ModelAPIError) else None


_HAS_CATEGORIES = hasattr(ModelHTTPError, "for_category")
# Most specific first (ContextLengthError before BadRequestError...).
_CATEGORIES: tuple[tuple[type[e.APIStatusError], str], ...] = (
    (e.RateLimitError, "ModelRateLimitError"),
    (e.OverloadedError, "ModelOverloadedError"),
    (e.ContextLengthError, "ModelContextWindowExceededError"),
    (e.AuthenticationError, "ModelAuthenticationError"),
    (e.PermissionDeniedError, "ModelAuthenticationError"),
    (e.NotFoundError, "ModelNotFoundError"),
    (e.BadRequestError, "ModelRequestRejectedError"),
    (e.UnprocessableEntityError, "ModelRequestRejectedError"),
    (e.ConflictError, "ModelRequestRejectedError"),
)
_BY_STATUS = {
    402: "ModelQuotaExceededError",
    429: "ModelRateLimitError",
    503: "ModelUnavailableError",
    529: "ModelOverloadedError",
}
_CONNECTION = _category("ModelConnectionError")
_TIMEOUT = _category("ModelTimeoutError")
_UNAVAILABLE = _category("ModelUnavailableError")


def model_error(exc: e.LLMFastError, model_name: str, *, in_stream: bool = False) -> Exception:
    """The pydantic-ai exception standing for ``exc`` (raise it ``from exc``)."""
    if isinstance(exc, e.StreamInterruptedError):
        in_stream = True  # also an instance of its cause's class: mapped by that below
    if isinstance(exc, e.APIStatusError):
        code, kind = _codes(exc.body)
        return _http_error(
            _status_category(exc),
            exc.effective_status,
            model_name,
            exc.body,
            headers=dict(exc.headers),
            provider_error_code=code,
            provider_error_type=kind,
            retry_after=exc.retry_after,
            in_stream=in_stream,
        )
    if isinstance(exc, e.StreamEventError):
        return _event_error(exc, model_name)
    if isinstance(exc, e.TransportError) and not isinstance(exc, e.QueueTimeout):
        connect = isinstance(exc, e.ConnectError | e.ConnectTimeout)
        cls = _TIMEOUT if isinstance(exc, e.Timeout) else _CONNECTION
        phase = "connect" if connect else "read"
        return _api_error(cls, model_name, str(exc), phase=phase, in_stream=in_stream)
    if isinstance(exc, e.CircuitOpenError):
        return _api_error(_UNAVAILABLE, model_name, str(exc))
    if isinstance(exc, e.ConfigurationError):
        return UserError(str(exc))
    return _api_error(None, model_name, str(exc), in_stream=in_stream)


def _status_category(exc: e.APIStatusError) -> str:
    name = _BY_STATUS.get(exc.effective_status)
    if name is None:
        name = next((n for kind, n in _CATEGORIES if isinstance(exc, kind)), None)
    if name is None:
        name = "ModelServerError" if exc.effective_status >= 500 else "ModelRequestRejectedError"
    return name


def _http_error(
    category: str, status: int, model_name: str, body: Any, **details: Any
) -> ModelHTTPError:
    cls = _category(category)
    if _HAS_CATEGORIES:
        factory: Any = ModelHTTPError.for_category  # type: ignore[attr-defined,unused-ignore]
        made: ModelHTTPError = factory(
            cls, status_code=status, model_name=model_name, body=body, **details
        )
        return made
    try:  # releases before error categories: headers only (2.x), or nothing at all
        return ModelHTTPError(status, model_name, body, headers=details.get("headers"))
    except TypeError:
        return ModelHTTPError(status, model_name, body)


def _api_error(
    cls: type[ModelAPIError] | None, model_name: str, message: str, **details: Any
) -> ModelAPIError:
    try:
        return (cls or ModelAPIError)(model_name, message, **details)
    except TypeError:  # a release whose ModelAPIError takes no details
        return ModelAPIError(model_name, message)


def _event_error(exc: e.StreamEventError, model_name: str) -> ModelAPIError:
    code, kind = _codes({"error": exc.error})
    details = {"provider_error_code": code, "provider_error_type": kind, "in_stream": True}
    if exc.status is not None and exc.status >= 400:
        name = _BY_STATUS.get(exc.status) or (
            "ModelServerError" if exc.status >= 500 else "ModelRequestRejectedError"
        )
        return _http_error(name, exc.status, model_name, exc.error, **details)
    return _api_error(None, model_name, str(exc), body=exc.error, **details)


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
