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
    ├── BatchAbortedError                    a batch stopped: every item would fail the same way
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
    │   └── ResponseTooLargeError            over a PoolConfig size limit (body, event)
    ├── OutputError                          a structured reply is not the requested output
    │   ├── OutputValidationError (ValueError)  no attempt validated; each one's error
    │   ├── OutputRefusedError               the model refused
    │   └── OutputTruncatedError             the reply hit the token limit
    └── StreamError                          a streamed response went wrong
        ├── StreamEventError                 the server sent an error event in the stream
        ├── StreamTruncatedError             ended before its end marker, or unfinished
        ├── StreamInterruptedError           failed after chunks reached the caller
        │   └── StreamInterruptedError[X]    ... because of X: also an instance of X
        └── StreamConsumedError              the stream was already read or closed

Every error's ``str()`` is safe to log: API keys never appear in it.
"""

from __future__ import annotations

import email.utils
import math
import reprlib
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llmfast._error_body import (
    error_payload,
    excerpt,
    is_context_length,
    is_overloaded,
    message_of,
    status_named_by,
)

if TYPE_CHECKING:
    from llmfast.types import ChatCompletion, ChatCompletionChunk, OutputAttempt, Usage

__all__ = [
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "BatchAbortedError",
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
    "ResponseTooLargeError",
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


class BatchAbortedError(LLMFastError):
    """A batch stopped early because its failures were fatal and systematic (a rejected
    key, a server that cannot be reached...): every item still to come would have failed
    the same way. What finished is in the checkpoint; run the batch again to resume.

    Attributes:
        cause: the error the items failed with (also ``__cause__``).
        reason: why that stops the batch, in words.
        done: items with a result (resumed ones included) when it stopped.
        failed: items that failed in this run.
        total: the number of items, when known.
        checkpoint: the checkpoint file, when the batch had one.
    """

    def __init__(
        self,
        cause: BaseException,
        reason: str,
        *,
        done: int,
        failed: int,
        total: int | None = None,
        checkpoint: str | None = None,
    ) -> None:
        self.cause = cause
        self.reason = reason
        self.done = done
        self.failed = failed
        self.total = total
        self.checkpoint = checkpoint
        of = "" if total is None else f" of {total}"
        text = (
            f"batch stopped: {reason}: {type(cause).__name__}: {cause} "
            f"({done}{of} done, {failed} failed)"
        )
        if checkpoint is not None:
            text += f"; fix the cause and run it again to resume from {checkpoint}"
        super().__init__(text)


class APIStatusError(LLMFastError):
    """The server answered with an HTTP error status, or with an error body.

    Attributes:
        status: the HTTP status code as sent (200 for an error body sent with 200).
        effective_status: the status the error stands for: ``status`` for an error
            status; for an error body sent with a success status, the status its
            ``type``/``code`` names (500 when it names none). Retries and the circuit
            breaker decide on it.
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
        effective_status: int | None = None,
    ) -> None:
        self.status = status
        self.effective_status = status if effective_status is None else effective_status
        self.message = message
        self.body = body
        self.request_id = request_id
        self.retry_after = retry_after
        self.headers: Mapping[str, str] = headers if headers is not None else {}
        text = f"HTTP {status}: {message}" if message else f"HTTP {status}"
        if status < 400:
            text = f"HTTP {status} with an error body: {message or '(no message)'}"
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
    """The response body could not be decoded into the expected type (malformed or
    hostile JSON, a content type that is not the API's, such as an HTML page)."""


class ResponseTooLargeError(DecodeError):
    """A response exceeded a size limit of ``PoolConfig``: a body read whole larger,
    decompressed, than ``max_body_bytes``, or one stream event or line longer than
    ``max_event_bytes``; reading stopped there, so memory stays bounded.

    Attributes:
        limit: the limit exceeded, in bytes.
    """

    def __init__(self, message: str, *, limit: int | None = None) -> None:
        super().__init__(message)
        self.limit = limit


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
        text = repr(excerpt(message)) if isinstance(message, str) and message else None
        text = text or reprlib.repr(error)  # bounded, however deep the payload
        super().__init__(f"error event in stream: {text}")


class StreamTruncatedError(StreamError):
    """The stream ended unfinished: the body closed cleanly before the stream's end
    marker, or the end marker came while a choice had no finish reason."""


class StreamInterruptedError(StreamError):
    """The stream failed after some chunks had reached the caller.

    Nothing is lost: ``partial`` is the completion accumulated from every chunk
    received, and ``chunks`` holds those chunks. The original error is ``__cause__``.

    Made by [`from_cause`][llmfast.errors.StreamInterruptedError.from_cause], the error is
    also an instance of its cause's class, with the cause's attributes: an idle timeout
    after the first chunk is both a ``StreamInterruptedError`` and an ``IdleTimeout``
    (so a ``TimeoutError``); a reset is also a ``ReadError``.
    """

    _cause_type: type[LLMFastError] | None = None

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

    @classmethod
    def from_cause(
        cls,
        cause: LLMFastError,
        message: str,
        *,
        partial: ChatCompletion | None = None,
        chunks: list[ChatCompletionChunk] | None = None,
    ) -> StreamInterruptedError:
        """An interrupted error that is also an instance of ``type(cause)``.

        Its class is ``StreamInterruptedError[<cause class>]``, a subclass of both
        (made once per cause class). The cause's attributes (``status``, ``error``...)
        are copied, not rebuilt: its ``__init__`` is not called again. ``cause`` is
        returned as it is when it already is a ``StreamInterruptedError``.
        """
        if isinstance(cause, StreamInterruptedError):
            return cause
        error = _interrupted_from_state(type(cause), (message,))
        error.__dict__.update(cause.__dict__)
        error.partial = partial
        error.chunks = chunks if chunks is not None else []
        error.__cause__ = cause
        return error

    def __str__(self) -> str:
        return BaseException.__str__(self)  # the message, whatever the cause's __str__

    def __reduce__(self) -> Any:
        cause_type = type(self)._cause_type
        if cause_type is None:
            return super().__reduce__()
        return _interrupted_from_state, (cause_type, self.args), self.__dict__

    @property
    def partial_text(self) -> str:
        """The text received before the failure (choice 0)."""
        if self.partial is None:
            return ""
        return self.partial.text or ""


_INTERRUPTED_CLASSES: dict[type[LLMFastError], type[StreamInterruptedError]] = {}


def _interrupted_class(cause_type: type[LLMFastError]) -> type[StreamInterruptedError]:
    """``StreamInterruptedError[cause_type]``: a subclass of both, made once per cause."""
    made = _INTERRUPTED_CLASSES.get(cause_type)
    if made is not None:
        return made
    name = f"StreamInterruptedError[{cause_type.__name__}]"
    namespace = {
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": f"A stream interrupted by {cause_type.__name__} after its first chunk.",
        "_cause_type": cause_type,
    }
    try:
        made = type(name, (StreamInterruptedError, cause_type), namespace)
    except TypeError:  # a layout or metaclass conflict: keep the plain class
        made = StreamInterruptedError
    return _INTERRUPTED_CLASSES.setdefault(cause_type, made)  # one class, even if raced


def _interrupted_from_state(
    cause_type: type[LLMFastError], args: tuple[Any, ...]
) -> StreamInterruptedError:
    """A bare instance of ``StreamInterruptedError[cause_type]`` (also for unpickling)."""
    cls = _interrupted_class(cause_type)
    error = cls.__new__(cls)
    error.args = args
    error.partial = None
    error.chunks = []
    return error


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
    return cls(
        status,
        message_of(body),
        body=body,
        request_id=headers.get(request_id_header),
        retry_after=parse_retry_after(headers),
        headers=headers,
        effective_status=effective,
    )
