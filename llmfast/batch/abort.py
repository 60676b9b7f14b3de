"""When a batch stops by itself: failures that are fatal and systematic, so that every
item still to come would fail the same way (a wrong key, a server that is not there).

Sending the rest would only record the same error for every item and, with retries,
take minutes; stopping keeps the checkpoint valid (unfinished items are simply sent on
the next run) and says why once. Failures that depend on the item (a 400 for one
prompt, a context too long) never stop a batch.
"""

from __future__ import annotations

from collections.abc import Mapping

from llmfast._error_body import QUOTA_CODES
from llmfast.errors import (
    APIStatusError,
    AuthenticationError,
    CircuitOpenError,
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    QueueTimeout,
    ServerError,
    TransportError,
)

__all__ = ["ABORT_AFTER", "AbortPolicy"]

ABORT_AFTER = 5
"""How many items in a row must fail the same way (after their retries) before a
batch that has had no success stops, or before an open circuit stops it."""

_SYSTEMATIC = (TransportError, ServerError, CircuitOpenError, ConfigurationError)


class AbortPolicy:
    """Watches finished items in the order they finish; ``failed`` returns the reason
    to stop, or ``None``.

    - An ``AuthenticationError`` (401), or an exhausted quota or billing limit, stops at
      once: the key is the same for every item.
    - A ``PermissionDeniedError`` (403) or ``NotFoundError`` (404: model or URL) stops at
      once when no item has succeeded yet (a later one may concern one item's model).
    - A transport error (refused, DNS, a timeout other than waiting in a local limiter's
      queue), a 5xx after retries, an open circuit, or a ``ConfigurationError`` raised by
      the call (a missing key, a parameter the provider lacks) stops when ``after`` items
      in a row failed with the same error and none succeeded.
    - An open circuit stops after ``after`` identical failures in a row at any point: the
      breaker already judged the backend down, and every item would fail in microseconds.
    """

    __slots__ = ("_signature", "_succeeded", "after", "streak")

    def __init__(self, after: int = ABORT_AFTER) -> None:
        self.after = after
        self.streak = 0
        """How many items in a row failed with the same error."""
        self._signature: tuple[object, ...] | None = None
        self._succeeded = False

    def succeeded(self) -> None:
        """An item succeeded."""
        self._succeeded = True
        self.streak = 0
        self._signature = None

    def failed(self, error: BaseException) -> str | None:
        """An item failed with ``error``: why the batch should stop, or ``None``."""
        signature = _signature(error)
        if signature == self._signature:
            self.streak += 1
        else:
            self._signature, self.streak = signature, 1
        if isinstance(error, AuthenticationError):
            return "the API key was rejected"
        if isinstance(error, APIStatusError) and _code(error) in QUOTA_CODES:
            return "the account's quota is exhausted"
        repeated = self.streak >= self.after
        if isinstance(error, CircuitOpenError) and repeated:
            return f"the circuit stayed open for {self.streak} items in a row"
        if self._succeeded:
            return None
        if isinstance(error, PermissionDeniedError):
            return "permission was denied before any item succeeded"
        if isinstance(error, NotFoundError):
            return "the model or URL was not found before any item succeeded"
        if isinstance(error, QueueTimeout):  # waiting in our own limiter: pacing, not upstream
            return None
        if repeated and isinstance(error, _SYSTEMATIC):
            return f"the first {self.streak} items all failed the same way"
        return None


def _signature(error: BaseException) -> tuple[object, ...]:
    """What makes two failures "the same": their class and HTTP status. Not the message,
    which may hold a request id, a proxy's HTML or the address happy eyeballs tried
    last: five ``ConnectError``s in a row, or five 502s, are one systematic failure."""
    return (type(error), error.status if isinstance(error, APIStatusError) else None)


def _code(error: APIStatusError) -> object:
    body = error.body
    inner = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(inner, Mapping):
        return inner.get("code") or inner.get("type")
    return None
