"""The llmfast exception tree.

Every failure a call can meet ends in one of these (or in ``asyncio.CancelledError``,
which llmfast never swallows)::

    LLMFastError
    ├── ConfigurationError (ValueError)      bad client or request settings
    │   ├── UnsupportedParameterError        a parameter the provider does not have
    │   └── MissingCredentialsError          no API key for a provider that needs one
    ├── ClientClosedError (RuntimeError)     a call on a closed Client
    ├── TransportError                       the request never got a whole answer
    │   ├── ConnectError                     could not connect (refused, DNS, TLS)
    │   ├── ReadError                        connection reset or broken mid-response
    │   └── Timeout (TimeoutError)           any deadline; also a builtin TimeoutError
    │       ├── ConnectTimeout               opening the connection
    │       ├── ReadTimeout                  the server went silent
    │       ├── FirstChunkTimeout            no first chunk in time
    │       ├── IdleTimeout                  too long between two stream events
    │       ├── DeadlineExceeded             the call's total deadline passed
    │       └── QueueTimeout                 waited too long in a limiter's queue
    ├── CircuitOpenError                     the backend's circuit breaker is open
    ├── QueueFullError                       a limiter's wait queue is full
    ├── RequestTooLargeError                 larger than the whole token budget
    ├── LimiterUnavailableError              a shared (Redis) limiter cannot be reached
    ├── APIStatusError                       the server answered with an HTTP error
    │   ├── BadRequestError           400
    │   │   └── ContextLengthError    the prompt is too long for the model
    │   ├── AuthenticationError       401
    │   ├── PermissionDeniedError     403
    │   ├── NotFoundError             404
    │   ├── ConflictError             409
    │   ├── UnprocessableEntityError  422
    │   ├── RateLimitError            429
    │   └── ServerError               5xx (and any other unexpected status)
    │       └── OverloadedError       529, or an "overloaded" error body
    ├── DecodeError                          a body that is not what the API promises
    ├── OutputError                          a structured reply is not the requested output
    │   ├── OutputValidationError (ValueError)  no attempt validated; each one's error
    │   ├── OutputRefusedError               the model refused
    │   └── OutputTruncatedError             the reply hit the token limit
    └── StreamError                          a streamed response went wrong
        ├── StreamEventError                 the server sent an error event in the stream
        ├── StreamTruncatedError             the stream ended before its end marker
        ├── StreamInterruptedError           failed after chunks reached the caller
        └── StreamConsumedError              the stream was already read or closed

Every error's ``str()`` is safe to log: API keys never appear in it.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmfast.types import ChatCompletion, ChatCompletionChunk, OutputAttempt, Usage

__all__ = [
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "CircuitOpenError",
    "ClientClosedError",
    "ConfigurationError",
    "ConflictError",
    "ConnectError",
    "ConnectTimeout",
    "ContextLengthError",
    "DeadlineExceeded",
    "DecodeError",
    "FirstChunkTimeout",
    "IdleTimeout",
    "LLMFastError",
    "LimiterUnavailableError",
    "MissingCredentialsError",
    "NotFoundError",
    "OutputError",
    "OutputRefusedError",
    "OutputTruncatedError",
    "OutputValidationError",
    "OverloadedError",
    "PermissionDeniedError",
    "QueueFullError",
    "QueueTimeout",
    "RateLimitError",
    "ReadError",
    "ReadTimeout",
    "RequestTooLargeError",
    "ServerError",
    "StreamConsumedError",
    "StreamError",
    "StreamEventError",
    "StreamInterruptedError",
    "StreamTruncatedError",
    "Timeout",
    "TransportError",
    "UnprocessableEntityError",
    "UnsupportedParameterError",
    "error_for_status",
    "parse_retry_after",
]


class LLMFastError(Exception):
    """Base of every error llmfast raises."""


class ConfigurationError(LLMFastError, ValueError):
    """The client or a request was set up wrongly (missing model, bad URL...)."""


class UnsupportedParameterError(ConfigurationError):
    """A request parameter the chosen provider does not support.

    Attributes:
        parameter: the parameter's name.
        provider: the backend's kind.
    """

    def __init__(self, parameter: str, provider: str, detail: str = "") -> None:
        self.parameter = parameter
        self.provider = provider
        text = f"{provider} does not support the parameter {parameter!r}"
        super().__init__(f"{text}: {detail}" if detail else text)


class MissingCredentialsError(ConfigurationError):
    """No API key for a provider or remote host that needs one; raised when the
    ``Client`` is created, before any request is sent.

    Attributes:
        provider: the provider's name (``"openai"``, ``"anthropic"``, ``"gemini"``).
        env_vars: the environment variables the key is read from, in order.
    """

    def __init__(self, message: str, *, provider: str, env_vars: tuple[str, ...]) -> None:
        self.provider = provider
        self.env_vars = env_vars
        super().__init__(message)


class ClientClosedError(LLMFastError, RuntimeError):
    """A call was made on a Client that has been closed."""


class TransportError(LLMFastError):
    """The request did not get a complete answer from the server."""


class ConnectError(TransportError):
    """The connection could not be opened (refused, DNS failure, TLS error)."""


class ReadError(TransportError):
    """The connection broke while sending the request or reading the response."""


class Timeout(TransportError, TimeoutError):
    """A deadline passed. Also a builtin ``TimeoutError``."""


class ConnectTimeout(Timeout):
    """Opening the connection took longer than the connect timeout."""


class ReadTimeout(Timeout):
    """The server sent nothing for longer than the read timeout."""


class FirstChunkTimeout(Timeout):
    """The first chunk of a response did not arrive in time."""


class IdleTimeout(Timeout):
    """A stream sent no event for too long (keep-alive comments and pings don't count)."""


class DeadlineExceeded(Timeout):
    """The call's total deadline (queueing, retries and fallbacks included) passed."""


class QueueTimeout(Timeout):
    """A call waited longer than allowed in a limiter's queue."""


class CircuitOpenError(LLMFastError):
    """The backend's circuit breaker is open: calls fail fast until it cools down.

    Attributes:
        backend: a description of the backend.
        retry_at: ``time.monotonic()`` when a probe will be let through, when known.
    """

    def __init__(self, backend: str, retry_at: float | None = None) -> None:
        self.backend = backend
        self.retry_at = retry_at
        super().__init__(f"the circuit for {backend} is open")


class QueueFullError(LLMFastError):
    """A limiter's wait queue is full; the call was not queued."""


class RequestTooLargeError(LLMFastError):
    """The request needs more tokens than the limiter's whole budget allows."""


class LimiterUnavailableError(LLMFastError):
    """A shared limiter's store (Redis) could not be reached."""


class APIStatusError(LLMFastError):
    """The server answered with an HTTP error status.

    Attributes:
        status: the HTTP status code.
        message: the server's error message, when its body had one.
        body: the parsed error body (a dict when it was JSON, else the text).
        request_id: the server's request id header, when present.
        retry_after: seconds the server asked to wait (``retry-after-ms`` or
            ``retry-after``, seconds or an HTTP date), or ``None``.
        headers: the response headers.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        body: Any = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.message = message
        self.body = body
        self.request_id = request_id
        self.retry_after = retry_after
        self.headers: Mapping[str, str] = headers if headers is not None else {}
        text = f"HTTP {status}: {message}" if message else f"HTTP {status}"
        if request_id:
            text += f" (request id {request_id})"
        super().__init__(text)


class BadRequestError(APIStatusError):
    """400: the server rejected the request as malformed."""


class ContextLengthError(BadRequestError):
    """400: the prompt (plus ``max_tokens``) exceeds the model's context window."""


class AuthenticationError(APIStatusError):
    """401: missing or invalid API key."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not use this resource."""


class NotFoundError(APIStatusError):
    """404: unknown endpoint or model."""


class ConflictError(APIStatusError):
    """409: the request conflicts with the server's state."""


class UnprocessableEntityError(APIStatusError):
    """422: the request was well-formed but could not be processed."""


class RateLimitError(APIStatusError):
    """429: too many requests or tokens; see ``retry_after``."""


class ServerError(APIStatusError):
    """5xx (or any unexpected status): the server failed."""


class OverloadedError(ServerError):
    """529 or an "overloaded" error: the provider is shedding load."""


class DecodeError(LLMFastError):
    """The response body could not be decoded into the expected type."""


class StreamError(LLMFastError):
    """A streamed response went wrong."""


class StreamEventError(StreamError):
    """The server reported an error inside the stream.

    Attributes:
        error: the error payload as sent (usually a dict with ``message``/``type``/``code``).
        status: the HTTP-like status the payload carried, when it had one.
    """

    def __init__(self, error: Any, *, status: int | None = None) -> None:
        self.error = error
        self.status = status
        message = error.get("message") if isinstance(error, Mapping) else None
        super().__init__(f"error event in stream: {message or error!r}")


class StreamTruncatedError(StreamError):
    """The connection closed cleanly before the stream's end marker arrived."""


class StreamInterruptedError(StreamError):
    """The stream failed after some chunks had reached the caller.

    Nothing is lost: ``partial`` is the completion accumulated from every chunk
    received, and ``chunks`` holds those chunks. The original error is ``__cause__``.
    """

    def __init__(
        self,
        message: str,
        *,
        partial: ChatCompletion | None = None,
        chunks: list[ChatCompletionChunk] | None = None,
    ) -> None:
        self.partial = partial
        self.chunks = chunks if chunks is not None else []
        super().__init__(message)

    @property
    def partial_text(self) -> str:
        """The text received before the failure (choice 0)."""
        if self.partial is None:
            return ""
        return self.partial.text or ""


class StreamConsumedError(StreamError, RuntimeError):
    """The stream was already read to the end, or closed."""


class OutputError(LLMFastError):
    """A structured call's reply could not be turned into the requested output.

    Attributes:
        completion: the last completion received.
        usage: the usage summed over every attempt of the call.
    """

    def __init__(
        self, message: str, *, completion: ChatCompletion | None = None, usage: Usage | None = None
    ) -> None:
        super().__init__(message)
        self.completion = completion
        self.usage = usage


class OutputValidationError(OutputError, ValueError):
    """Every attempt's reply failed validation; ``attempts`` holds each one's text and
    error."""

    def __init__(
        self,
        message: str,
        *,
        attempts: list[OutputAttempt],
        completion: ChatCompletion | None = None,
        usage: Usage | None = None,
    ) -> None:
        super().__init__(message, completion=completion, usage=usage)
        self.attempts = attempts


class OutputRefusedError(OutputError):
    """The model declined to answer with the output (``refusal`` holds its words)."""

    def __init__(
        self,
        refusal: str,
        *,
        completion: ChatCompletion | None = None,
        usage: Usage | None = None,
    ) -> None:
        super().__init__(f"the model refused: {refusal[:300]}", completion=completion, usage=usage)
        self.refusal = refusal


class OutputTruncatedError(OutputError):
    """The reply hit the token limit (``finish_reason: length``) before the output
    was complete; raise ``max_tokens``."""


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


def _message_from_body(body: Any) -> str:
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, Mapping):
            msg = err.get("message") or err.get("type") or err.get("code")
            return str(msg) if msg is not None else ""
        if isinstance(err, str):
            return err
        msg = body.get("message")
        return str(msg) if msg is not None else ""
    if isinstance(body, str):
        return body[:500]
    return ""


def _is_overloaded(body: Any) -> bool:
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, Mapping):
            return "overloaded" in str(err.get("type", "")).lower()
    return False


def _is_context_length(body: Any) -> bool:
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, Mapping):
            code = f"{err.get('code', '')} {err.get('type', '')}".lower()
            if "context_length" in code:
                return True
            message = str(err.get("message", "")).lower()
            return "context length" in message or "context window" in message
    return False


def error_for_status(
    status: int,
    body: Any,
    headers: Mapping[str, str],
    *,
    request_id_header: str = "x-request-id",
) -> APIStatusError:
    """Build the right ``APIStatusError`` subclass for an HTTP error response."""
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = ServerError
    if cls is ServerError and _is_overloaded(body):
        cls = OverloadedError
    elif cls is BadRequestError and _is_context_length(body):
        cls = ContextLengthError
    return cls(
        status,
        _message_from_body(body),
        body=body,
        request_id=headers.get(request_id_header),
        retry_after=parse_retry_after(headers),
        headers=headers,
    )
