"""The error tree and the ``retry-after`` parser."""

from __future__ import annotations

import email.utils
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

import llmfast
from llmfast.errors import error_for_status, parse_retry_after

NOW = 1_750_000_000.0


@given(st.floats(min_value=0, max_value=86_400, allow_nan=False))
def test_retry_after_seconds(seconds: float) -> None:
    assert parse_retry_after({"retry-after": repr(seconds)}) == pytest.approx(seconds)


@given(st.integers(min_value=0, max_value=86_400_000))
def test_retry_after_ms_wins_over_seconds(ms: int) -> None:
    headers = {"retry-after-ms": str(ms), "retry-after": "999"}
    assert parse_retry_after(headers) == pytest.approx(ms / 1000)


@given(st.integers(min_value=-3600, max_value=86_400))
def test_retry_after_http_date(offset: int) -> None:
    when = datetime.fromtimestamp(NOW, tz=timezone.utc) + timedelta(seconds=offset)
    header = email.utils.format_datetime(when, usegmt=True)
    assert parse_retry_after({"retry-after": header}, now=NOW) == pytest.approx(max(offset, 0))


@given(st.text(max_size=40), st.text(max_size=40))
def test_retry_after_never_raises_and_is_never_negative(seconds: str, ms: str) -> None:
    value = parse_retry_after({"retry-after": seconds, "retry-after-ms": ms})
    assert value is None or 0 <= value <= 86_400


@pytest.mark.parametrize("junk", ["soon", "", "nan", "inf", "-inf", "1e999"])
def test_retry_after_junk_is_none(junk: str) -> None:
    assert parse_retry_after({"retry-after": junk}) is None
    assert parse_retry_after({"retry-after-ms": junk}) is None


def test_retry_after_absent() -> None:
    assert parse_retry_after({}) is None


def test_negative_retry_after_means_now() -> None:
    assert parse_retry_after({"retry-after": "-5"}) == 0


def test_every_error_is_an_llmfast_error_and_timeouts_are_timeout_errors() -> None:
    for name in llmfast.errors.__all__:
        obj = getattr(llmfast.errors, name)
        if isinstance(obj, type):
            assert issubclass(obj, llmfast.LLMFastError)
            assert getattr(llmfast, name) is obj  # re-exported
    assert issubclass(llmfast.ConnectTimeout, TimeoutError)
    assert issubclass(llmfast.ReadTimeout, TimeoutError)
    assert issubclass(llmfast.ReadTimeout, llmfast.TransportError)


def test_error_for_status_uses_the_body_and_headers() -> None:
    body = {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}
    exc = error_for_status(429, body, {"x-request-id": "req_1", "retry-after": "2"})
    assert isinstance(exc, llmfast.RateLimitError)
    assert (exc.status, exc.message, exc.request_id, exc.retry_after) == (
        429,
        "slow down",
        "req_1",
        2.0,
    )
    assert str(exc) == "HTTP 429: slow down (request id req_1)"


def test_error_for_status_with_a_text_body_and_odd_status() -> None:
    exc = error_for_status(418, "<html>teapot</html>", {})
    assert type(exc) is llmfast.ServerError
    assert exc.message == "teapot"  # an HTML page is shown as its text
    assert exc.retry_after is None


def test_stream_interrupted_without_partial() -> None:
    exc = llmfast.StreamInterruptedError("boom")
    assert exc.partial_text == ""
    assert exc.chunks == []


@pytest.mark.parametrize(
    "error",
    [
        {"message": "This model's maximum context length is 8192 tokens", "type": "invalid"},
        {"message": "too long", "code": "context_length_exceeded"},
        {"message": "prompt is too long for the context window"},
    ],
)
def test_context_length_errors_are_recognised(error: dict[str, str]) -> None:
    assert type(error_for_status(400, {"error": error}, {})) is llmfast.ContextLengthError


def test_a_plain_bad_request_is_not_a_context_length_error() -> None:
    exc = error_for_status(400, {"error": {"message": "bad temperature"}}, {})
    assert type(exc) is llmfast.BadRequestError


def test_unsupported_parameter_names_parameter_and_provider() -> None:
    exc = llmfast.UnsupportedParameterError("logprobs", "anthropic")
    assert (exc.parameter, exc.provider) == ("logprobs", "anthropic")
    assert str(exc) == "anthropic does not support the parameter 'logprobs'"
    assert isinstance(exc, llmfast.ConfigurationError)
