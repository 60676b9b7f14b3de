"""The frames a shared flight's leader publishes: errors rebuild as the same class with
the same fields, results and chunks decode to equal typed values, whatever they hold."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llmfast
from llmfast import errors
from llmfast.errors import error_for_status
from llmfast.layers import flight_frames as f
from llmfast.types import ChatCompletion, ChatCompletionChunk, EmbeddingResponse

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)
header_names = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)


def round_trip(frame: f.Frame) -> f.Frame:
    return f.decode_frame(f.encode_frame(frame))


@settings(max_examples=60, deadline=None)
@given(
    status=st.integers(400, 599),
    message=st.text(max_size=40),
    body=json_values,
    headers=st.dictionaries(header_names, st.text(max_size=20), max_size=4),
)
def test_an_api_error_rebuilds_as_the_same_class_and_fields(
    status: int, message: str, body: Any, headers: dict[str, str]
) -> None:
    payload = {"error": {"message": message, "detail": body}}
    original = error_for_status(status, payload, headers)
    info = f.error_info(original)
    assert info is not None
    frame = round_trip(f.Frame(f.ERROR, error=info))
    assert frame.error is not None
    rebuilt = f.rebuild_error(frame.error)
    assert type(rebuilt) is type(original)
    assert isinstance(rebuilt, llmfast.APIStatusError)
    for name in ("status", "effective_status", "message", "body", "request_id", "retry_after"):
        assert getattr(rebuilt, name) == getattr(original, name), name
    assert dict(rebuilt.headers) == dict(original.headers)
    assert str(rebuilt) == str(original)


_PLAIN = [
    errors.ReadError,
    errors.ConnectError,
    errors.ReadTimeout,
    errors.IdleTimeout,
    errors.DecodeError,
    errors.StreamTruncatedError,
    errors.QueueFullError,
]


@given(cls=st.sampled_from(_PLAIN), text=st.text(max_size=40), interrupted=st.booleans())
def test_a_plain_error_rebuilds_as_the_same_class(
    cls: type[errors.LLMFastError], text: str, interrupted: bool
) -> None:
    original: errors.LLMFastError = cls(text)
    if interrupted:
        original = errors.StreamInterruptedError.from_cause(original, text)
    info = f.error_info(original)
    assert info is not None
    frame = round_trip(f.Frame(f.ERROR, error=info))
    assert frame.error is not None
    rebuilt = f.rebuild_error(frame.error)
    assert type(rebuilt) is type(original)
    assert str(rebuilt) == str(original)
    assert isinstance(rebuilt, errors.StreamInterruptedError) == interrupted


def test_errors_that_cannot_be_rebuilt_are_not_sent() -> None:
    assert f.error_info(ValueError("not ours")) is None
    assert f.error_info(errors.CircuitOpenError("backend")) is None  # constructor arguments
    assert f.error_info(errors.StreamInterruptedError("plain, no cause")) is None
    unknown = f.ErrorInfo("NoSuchError", "from another version")
    assert f.rebuild_error(unknown) is None
    assert f.rebuild_error(f.ErrorInfo("Request", "not an error class")) is None


@given(texts=st.lists(st.text(max_size=30), min_size=1, max_size=5))
def test_chunks_and_results_decode_to_equal_typed_values(texts: list[str]) -> None:
    chunks = [
        msgspec.convert(
            {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"content": text}}]},
            ChatCompletionChunk,
        )
        for text in texts
    ]
    for chunk in chunks:
        assert round_trip(f.Frame(f.CHUNK, chunk=chunk)).chunk == chunk
    completion = msgspec.convert(
        {
            "id": "c1",
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(texts)},
                    "finish_reason": "stop",
                }
            ],
        },
        ChatCompletion,
    )
    frame = f.result_frame(200, {"x-request-id": "r"}, completion)
    assert frame is not None
    decoded = round_trip(frame)
    assert decoded.completion == completion
    assert decoded.headers == {"x-request-id": "r"}


def test_only_completions_and_embeddings_travel_as_results() -> None:
    embeddings = msgspec.convert(
        {"data": [{"index": 0, "embedding": [0.5, 1.0]}], "model": "m"}, EmbeddingResponse
    )
    frame = f.result_frame(200, {}, embeddings)
    assert frame is not None
    assert round_trip(frame).embeddings == embeddings
    assert f.result_frame(200, {}, {"a dict": "result"}) is None


@given(data=st.binary(max_size=64))
def test_garbage_never_decodes_silently(data: bytes) -> None:
    try:
        frame = f.decode_frame(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return
    assert isinstance(frame.kind, int)  # a well-formed frame, by chance


def test_an_unencodable_body_raises_on_encoding() -> None:
    info = f.ErrorInfo("BadRequestError", "x", status=400, body={"a": object()})
    with pytest.raises(TypeError):
        f.encode_frame(f.Frame(f.ERROR, error=info))
