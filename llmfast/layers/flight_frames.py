"""What a shared flight's leader publishes for its followers, one frame per Redis
stream entry, encoded with msgspec (msgpack, never pickle: whoever can write to Redis
still cannot run code in the readers).

A plain call publishes one ``RESULT`` frame (status, headers and the completion or
embeddings); a stream publishes ``HEAD`` (status, headers), one ``CHUNK`` per chunk
and ``END``. A failure publishes ``ERROR`` with what rebuilds the same typed error in
the follower (see [`error_info`][llmfast.layers.flight_frames.error_info]); a result,
chunk or error that cannot travel publishes ``ALONE`` (each follower calls on its own);
a leader cancelled before the end publishes ``ABANDONED`` (a follower takes over).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from llmfast import errors
from llmfast.errors import APIStatusError, LLMFastError, StreamInterruptedError
from llmfast.types import ChatCompletion, ChatCompletionChunk, EmbeddingResponse

__all__ = [
    "ABANDONED",
    "ALONE",
    "CHUNK",
    "END",
    "ERROR",
    "HEAD",
    "RESULT",
    "ErrorInfo",
    "Frame",
    "decode_frame",
    "encode_frame",
    "error_info",
    "rebuild_error",
    "result_frame",
]

HEAD, CHUNK, END, RESULT, ERROR, ALONE, ABANDONED = range(7)


class ErrorInfo(msgspec.Struct, array_like=True, omit_defaults=True):
    """A leader's error: the class's name in ``llmfast.errors`` and what rebuilds it."""

    kind: str
    text: str
    interrupted: bool = False  # a StreamInterruptedError[kind]
    status: int | None = None  # the APIStatusError fields
    message: str = ""
    body: Any = None
    request_id: str | None = None
    retry_after: float | None = None
    headers: dict[str, str] | None = None
    effective_status: int | None = None


class Frame(msgspec.Struct, array_like=True, omit_defaults=True):
    """One entry of a shared flight's stream."""

    kind: int
    status: int = 200
    headers: dict[str, str] | None = None
    chunk: ChatCompletionChunk | None = None
    completion: ChatCompletion | None = None
    embeddings: EmbeddingResponse | None = None
    error: ErrorInfo | None = None


encode_frame = msgspec.msgpack.Encoder().encode
decode_frame = msgspec.msgpack.Decoder(Frame).decode


def result_frame(status: int, headers: Mapping[str, str], result: Any) -> Frame | None:
    """The ``RESULT`` frame of a plain call, or ``None`` for a result type that cannot
    travel (only completions and embeddings do)."""
    if type(result) is ChatCompletion:
        return Frame(RESULT, status, dict(headers), completion=result)
    if type(result) is EmbeddingResponse:
        return Frame(RESULT, status, dict(headers), embeddings=result)
    return None


def _rebuildable(cls: type[BaseException]) -> bool:
    """An llmfast error class built from its message alone (no ``__init__`` of its own)."""
    if getattr(errors, cls.__name__, None) is not cls or not issubclass(cls, LLMFastError):
        return False
    if issubclass(cls, APIStatusError):
        return True
    return not any("__init__" in vars(k) for k in cls.__mro__ if k.__module__.startswith("llmfast"))


def error_info(exc: BaseException) -> ErrorInfo | None:
    """What a follower needs to raise the same typed error, or ``None`` when it cannot
    be rebuilt (an error from outside llmfast, or one with constructor arguments)."""
    interrupted = isinstance(exc, StreamInterruptedError)
    cls: type[BaseException] = type(exc)
    if isinstance(exc, StreamInterruptedError):
        cause = type(exc)._cause_type
        if cause is None:
            return None
        cls = cause
    if not _rebuildable(cls):
        return None
    text = str(exc)
    if isinstance(exc, APIStatusError):
        return ErrorInfo(
            cls.__name__,
            text,
            interrupted,
            exc.status,
            exc.message,
            exc.body,
            exc.request_id,
            exc.retry_after,
            {str(k): str(v) for k, v in exc.headers.items()},
            exc.effective_status,
        )
    return ErrorInfo(cls.__name__, text, interrupted)


def rebuild_error(
    info: ErrorInfo, chunks: list[ChatCompletionChunk] | None = None
) -> LLMFastError | None:
    """The error ``info`` describes (``chunks``: those a stream delivered before it), or
    ``None`` when ``info`` names no rebuildable class (another llmfast version)."""
    cls = getattr(errors, info.kind, None)
    if not (isinstance(cls, type) and issubclass(cls, LLMFastError) and _rebuildable(cls)):
        return None
    error: LLMFastError
    if issubclass(cls, APIStatusError):
        error = cls(
            info.status if info.status is not None else 500,
            info.message,
            body=info.body,
            request_id=info.request_id,
            retry_after=info.retry_after,
            headers=info.headers or {},
            effective_status=info.effective_status,
        )
    else:
        error = cls(info.text)
    if info.interrupted:
        return StreamInterruptedError.from_cause(error, info.text, chunks=list(chunks or ()))
    return error
