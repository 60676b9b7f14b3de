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
    ├── CoalesceUnavailableError             shared (Redis) coalescing cannot be reached
    ├── BudgetExceededError                  a Budget would be overspent: not sent
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
    │   │   └── QuotaExceededError    the account's quota or billing limit is used up
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

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

__all__ = [
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "BatchAbortedError",
    "BudgetExceededError",
    "CircuitOpenError",
    "ClientClosedError",
    "CoalesceUnavailableError",
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
    "QuotaExceededError",
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


class CoalesceUnavailableError(LLMFastError):
    """A shared coalescing store (Redis) could not be reached and its ``on_error`` is
    ``"fail"`` (see [`RedisFlightStore`][llmfast.layers.RedisFlightStore])."""


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


class QuotaExceededError(RateLimitError):
    """429 with OpenAI's ``insufficient_quota`` or ``billing_hard_limit_reached``: the
    account's quota or billing limit is used up. Never retried: no wait helps."""


class ServerError(APIStatusError):
    """5xx (or any unexpected status): the server failed."""


class OverloadedError(ServerError):
    """529 or an "overloaded" error: the provider is shedding load."""


# The rest of the tree lives in modules of its own, re-exported here: this is the one
# place to import them from (their __module__ says so too).
from llmfast._errors_budget import BudgetExceededError  # noqa: E402
from llmfast._errors_output import (  # noqa: E402
    OutputError,
    OutputRefusedError,
    OutputTruncatedError,
    OutputValidationError,
)
from llmfast._errors_status import error_for_status, parse_retry_after  # noqa: E402
from llmfast._errors_stream import (  # noqa: E402
    DecodeError,
    ResponseTooLargeError,
    StreamConsumedError,
    StreamError,
    StreamEventError,
    StreamInterruptedError,
    StreamTruncatedError,
)
