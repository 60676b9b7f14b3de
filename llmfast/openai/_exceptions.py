"""The errors of ``llmfast.openai``, named and shaped as the ``openai`` SDK's, and still
llmfast's own.

Each is a subclass of the SDK-named class *and* of the [llmfast.errors][] class it
stands for, so ``except openai.RateLimitError`` and
``except llmfast.errors.RateLimitError`` both catch a 429::

    OpenAIError (llmfast.errors.LLMFastError)
    ├── APIError                          message, request, body, code, param, type
    │   ├── APIStatusError                status_code, response, request_id (+ llmfast's)
    │   │   ├── BadRequestError           400   (llmfast BadRequestError)
    │   │   ├── AuthenticationError       401
    │   │   ├── PermissionDeniedError     403
    │   │   ├── NotFoundError             404
    │   │   ├── ConflictError             409
    │   │   ├── UnprocessableEntityError  422
    │   │   ├── RateLimitError            429
    │   │   └── InternalServerError       5xx   (llmfast ServerError)
    │   ├── APIConnectionError            llmfast TransportError, CircuitOpenError...
    │   │   └── APITimeoutError           llmfast Timeout (also a builtin TimeoutError)
    │   └── APIResponseValidationError    llmfast DecodeError
    ├── LengthFinishReasonError           parse(): the reply hit the token limit
    └── ContentFilterFinishReasonError    parse(): the content filter stopped it

An llmfast error with a more specific class (``ContextLengthError``,
``OverloadedError``, ``StreamInterruptedError[ReadError]``...) becomes a class made once
that inherits from both sides, so nothing llmfast says about it is lost.
"""

from __future__ import annotations

import http
import json
from collections.abc import Mapping
from typing import Any

from llmfast import errors as _e

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "ContentFilterFinishReasonError",
    "InternalServerError",
    "LengthFinishReasonError",
    "NotFoundError",
    "OpenAIError",
    "PermissionDeniedError",
    "RateLimitError",
    "UnprocessableEntityError",
    "facade_error",
]


class Request:
    """What a facade error's ``request`` is: the method and URL (``httpx.Request``-like)."""

    __slots__ = ("method", "url")

    def __init__(self, method: str, url: str) -> None:
        self.method = method
        self.url = url

    def __repr__(self) -> str:
        return f"<Request({self.method!r}, {self.url!r})>"


class Response:
    """A status error's ``response``: status code, headers and body (``httpx``-like)."""

    __slots__ = ("body", "headers", "request", "status_code")

    def __init__(
        self, status_code: int, headers: Mapping[str, str], body: Any, request: Request | None
    ) -> None:
        self.status_code = status_code
        self.headers = headers
        self.body = body
        self.request = request

    @property
    def reason_phrase(self) -> str:
        """The status's standard phrase (``Too Many Requests``)."""
        try:
            return http.HTTPStatus(self.status_code).phrase
        except ValueError:
            return ""

    @property
    def text(self) -> str:
        """The body as text."""
        if isinstance(self.body, str):
            return self.body
        return json.dumps(self.body)

    def json(self) -> Any:
        """The parsed body."""
        return self.body

    def __repr__(self) -> str:
        return f"<Response [{self.status_code} {self.reason_phrase}]>"


class OpenAIError(_e.LLMFastError):
    """Base of every facade error (the SDK's ``OpenAIError``)."""


class APIError(OpenAIError):
    """An API call failed. ``body`` is the error object the server sent (its ``"error"``
    member), ``code``/``param``/``type`` come from it."""

    message: str
    request: Request | None
    body: object | None
    code: str | None = None
    param: str | None = None
    type: str | None = None

    def __init__(
        self, message: str, request: Request | None = None, *, body: object | None
    ) -> None:
        Exception.__init__(self, message)
        _sdk_fields(self, message, request, body)


class APIStatusError(APIError, _e.APIStatusError):
    """The server answered with an error status (``status_code``, ``response``,
    ``request_id``; llmfast's ``status``, ``retry_after``, ``headers`` too)."""

    response: Response
    status_code: int
    request_id: str | None

    def __init__(self, message: str, *, response: Response, body: object | None) -> None:
        _e.APIStatusError.__init__(
            self, response.status_code, message, body=body, headers=response.headers
        )
        self.args = (message,)
        _sdk_fields(self, message, response.request, body)
        self.response = response
        self.status_code = response.status_code


class BadRequestError(APIStatusError, _e.BadRequestError):
    """400."""


class AuthenticationError(APIStatusError, _e.AuthenticationError):
    """401."""


class PermissionDeniedError(APIStatusError, _e.PermissionDeniedError):
    """403."""


class NotFoundError(APIStatusError, _e.NotFoundError):
    """404."""


class ConflictError(APIStatusError, _e.ConflictError):
    """409."""


class UnprocessableEntityError(APIStatusError, _e.UnprocessableEntityError):
    """422."""


class RateLimitError(APIStatusError, _e.RateLimitError):
    """429."""


class InternalServerError(APIStatusError, _e.ServerError):
    """5xx (and any other unexpected status)."""


class APIConnectionError(APIError, _e.TransportError):
    """The server could not be reached, or the connection broke (``__cause__`` says why)."""

    def __init__(self, *, message: str = "Connection error.", request: Request | None = None):
        super().__init__(message, request, body=None)


class APITimeoutError(APIConnectionError, _e.Timeout):
    """A timeout or the call's deadline; also a builtin ``TimeoutError``."""

    def __init__(self, request: Request | None = None) -> None:
        super().__init__(message="Request timed out.", request=request)


class APIResponseValidationError(APIError, _e.DecodeError):
    """The server's answer is not what the API promises."""


class LengthFinishReasonError(OpenAIError):
    """``parse()``: the reply hit the token limit before the output was complete."""

    def __init__(self, *, completion: Any = None) -> None:
        usage = getattr(completion, "usage", None)
        super().__init__(
            f"Could not parse response content as the length limit was reached - {usage!r}"
        )
        self.completion = completion


class ContentFilterFinishReasonError(OpenAIError):
    """``parse()``: the content filter stopped the reply."""

    def __init__(self) -> None:
        super().__init__(
            "Could not parse response content as the request was rejected by the content filter"
        )


def _sdk_fields(error: Any, message: str, request: Request | None, body: object | None) -> None:
    error.message = message
    error.request = request
    error.body = body
    if isinstance(body, Mapping):
        error.code = body.get("code")
        error.param = body.get("param")
        error.type = body.get("type")
    else:
        error.code = error.param = error.type = None


# --- mapping llmfast's errors ---------------------------------------------------------

# Most specific first: the first class in an error's MRO found here is its facade side.
_SIDES: dict[type[BaseException], type[OpenAIError]] = {
    _e.BadRequestError: BadRequestError,
    _e.AuthenticationError: AuthenticationError,
    _e.PermissionDeniedError: PermissionDeniedError,
    _e.NotFoundError: NotFoundError,
    _e.ConflictError: ConflictError,
    _e.UnprocessableEntityError: UnprocessableEntityError,
    _e.RateLimitError: RateLimitError,
    _e.ServerError: InternalServerError,
    _e.APIStatusError: InternalServerError,
    _e.Timeout: APITimeoutError,
    _e.TransportError: APIConnectionError,
    _e.CircuitOpenError: APIConnectionError,
    _e.LimiterUnavailableError: APIConnectionError,
    _e.DecodeError: APIResponseValidationError,
    _e.ConfigurationError: OpenAIError,
    _e.ClientClosedError: OpenAIError,
    _e.LLMFastError: APIError,
}
_MADE: dict[type[BaseException], type[OpenAIError]] = {}


def _facade_class(cls: type[_e.LLMFastError]) -> type[OpenAIError]:
    made = _MADE.get(cls)
    if made is not None:
        return made
    side = next(_SIDES[base] for base in cls.__mro__ if base in _SIDES)
    if issubclass(side, cls):
        made = side
    else:
        try:
            made = type(
                side.__name__, (side, cls), {"__module__": __name__, "__doc__": cls.__doc__}
            )
        except TypeError:  # a layout conflict: the SDK side alone
            made = side
    return _MADE.setdefault(cls, made)


def facade_error(exc: _e.LLMFastError, url: str | None = None) -> OpenAIError:
    """``exc`` as the SDK-named error: same attributes, traceback and cause, plus the
    SDK's (``status_code``, ``response``, ``message``...). A facade error is returned as is."""
    if isinstance(exc, OpenAIError):
        return exc
    cls = _facade_class(type(exc))
    error: Any = cls.__new__(cls)
    error.__dict__.update(exc.__dict__)
    error.__traceback__ = exc.__traceback__
    error.__cause__ = exc.__cause__
    error.__context__ = exc.__context__
    error.__suppress_context__ = exc.__suppress_context__
    request = None if url is None else Request("POST", url)
    if isinstance(exc, _e.APIStatusError):
        body = exc.body
        inner = body.get("error", body) if isinstance(body, Mapping) else body
        message = f"Error code: {exc.status} - {body}"
        error.args = (message,)
        _sdk_fields(error, message, request, inner)
        error.status_code = exc.status
        error.response = Response(exc.status, exc.headers, body, request)
    elif isinstance(exc, _e.Timeout):
        error.args = exc.args
        _sdk_fields(error, "Request timed out.", request, None)
    elif isinstance(exc, _e.TransportError | _e.CircuitOpenError | _e.LimiterUnavailableError):
        error.args = exc.args
        _sdk_fields(error, "Connection error.", request, None)
    else:
        error.args = exc.args
        _sdk_fields(error, str(exc), request, getattr(exc, "body", None))
    made: OpenAIError = error
    return made
