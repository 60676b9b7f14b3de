"""Decode and stream errors of [llmfast.errors][] (import them from there)."""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llmfast._error_body import excerpt
from llmfast.errors import LLMFastError

if TYPE_CHECKING:
    from llmfast.types import ChatCompletion, ChatCompletionChunk, Usage


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
        usage: the usage the stream reported before the error (Anthropic's
            ``message_start``), when it did: that attempt still counts.
    """

    usage: Usage | None = None

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
        "__module__": "llmfast.errors",
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


for _cls in (
    DecodeError,
    ResponseTooLargeError,
    StreamError,
    StreamEventError,
    StreamTruncatedError,
    StreamInterruptedError,
    StreamConsumedError,
):
    _cls.__module__ = "llmfast.errors"
