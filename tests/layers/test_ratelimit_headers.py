"""Rate-limit header parsers (property tests) and the pacing they drive."""

from __future__ import annotations

import calendar
import datetime as dt

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from llmfast.limits import RateLimitHeaders, ServerHints, parse_rate_limit_headers
from llmfast.limits.headers import parse_duration, parse_rfc3339
from llmfast.limits.hints import Gauge

# --- Go-style durations (OpenAI's x-ratelimit-reset-*) ------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0s", 0.0),
        ("59.123s", 59.123),
        ("3m12.5s", 192.5),
        ("250us", 0.00025),
        ("250µs", 0.00025),
        ("7ns", 7e-9),
        (" 2s ", 2.0),
        ("1.5", 1.5),
        ("12", 12.0),
    ],
)
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds, abs=1e-12)


@pytest.mark.parametrize("text", ["", "s", "1x", "-1s", "1s-", "1 s", "abc", "nan", "inf", "1e3s"])
def test_malformed_durations_are_none(text: str) -> None:
    assert parse_duration(text) is None


_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


@given(
    st.lists(
        st.tuples(
            st.sampled_from(sorted(_UNIT_SECONDS)),
            st.integers(min_value=0, max_value=10**6),
            st.one_of(st.none(), st.integers(min_value=0, max_value=999)),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_any_go_duration_parses_to_the_sum_of_its_parts(
    parts: list[tuple[str, int, int | None]],
) -> None:
    text = "".join(
        f"{whole}{'' if frac is None else f'.{frac:03d}'}{unit}" for unit, whole, frac in parts
    )
    expected = sum(
        (whole + (0 if frac is None else frac / 1000)) * _UNIT_SECONDS[unit]
        for unit, whole, frac in parts
    )
    assert parse_duration(text) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@given(st.text(max_size=30))
def test_duration_parsing_never_raises(text: str) -> None:
    result = parse_duration(text)
    assert result is None or result >= 0


# --- RFC 3339 (Anthropic's anthropic-ratelimit-*-reset) -------------------------------


@given(
    st.datetimes(
        min_value=dt.datetime(1971, 1, 1),
        max_value=dt.datetime(2200, 1, 1),
        timezones=st.timezones(),
    ),
    st.sampled_from(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    st.booleans(),
)
def test_rfc3339_round_trips(when: dt.datetime, layout: str, fraction: bool) -> None:
    offset = when.utcoffset()
    assert offset is not None
    assume(offset.total_seconds() % 60 == 0)  # RFC 3339 offsets are whole minutes
    minutes = int(offset.total_seconds() // 60)
    when = when.replace(microsecond=when.microsecond if fraction else 0)
    zone = "Z" if minutes == 0 else f"{'+' if minutes > 0 else '-'}{abs(minutes) // 60:02d}:"
    zone += "" if minutes == 0 else f"{abs(minutes) % 60:02d}"
    text = when.strftime(layout) + (f".{when.microsecond:06d}" if fraction else "") + zone
    assert parse_rfc3339(text) == pytest.approx(when.timestamp(), abs=1e-6)


@pytest.mark.parametrize(
    "text",
    ["", "2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z", "2024-01-01T24:00:00Z",
     "2024-01-01T00:00:00", "2024-01-01T00:00:00+25:00", "yesterday"],
)  # fmt: skip
def test_malformed_timestamps_are_none(text: str) -> None:
    assert parse_rfc3339(text) is None


@given(st.text(max_size=40))
def test_timestamp_parsing_never_raises(text: str) -> None:
    parse_rfc3339(text)


# --- whole header sets -----------------------------------------------------------------


def test_openai_headers() -> None:
    info = parse_rate_limit_headers(
        {
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": "499",
            "x-ratelimit-reset-requests": "120ms",
            "x-ratelimit-limit-tokens": "30000",
            "x-ratelimit-remaining-tokens": "29950",
            "x-ratelimit-reset-tokens": "6m0s",
        }
    )
    assert info == RateLimitHeaders(500, 499, 0.12, 30000, 29950, 360.0)


def test_anthropic_headers_are_read_against_the_wall_clock() -> None:
    now = calendar.timegm((2024, 5, 1, 12, 0, 0, 0, 0, 0))
    info = parse_rate_limit_headers(
        {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": "2024-05-01T12:00:30Z",
            "anthropic-ratelimit-input-tokens-limit": "40000",
            "anthropic-ratelimit-input-tokens-remaining": "39000",
            "anthropic-ratelimit-input-tokens-reset": "2024-05-01T12:00:01.5Z",
        },
        now=now,
    )
    assert info == RateLimitHeaders(50, 0, 30.0, 40000, 39000, 1.5)
    assert info.exhausted_reset() == 30.0


def test_no_rate_limit_headers_is_none() -> None:
    assert parse_rate_limit_headers({"content-type": "application/json"}) is None


def test_a_reset_far_away_is_capped_at_a_day() -> None:
    info = parse_rate_limit_headers(
        {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "9999999h"}
    )
    assert info is not None
    assert info.reset_requests == 86400.0


_HEADER_NAMES = [
    f"x-ratelimit-{kind}-{what}"
    for kind in ("limit", "remaining", "reset")
    for what in ("requests", "tokens")
] + [
    f"anthropic-ratelimit-{what}-{kind}"
    for kind in ("limit", "remaining", "reset")
    for what in ("requests", "tokens", "input-tokens")
]


@given(st.dictionaries(st.sampled_from(_HEADER_NAMES), st.text(max_size=25)))
def test_header_parsing_never_raises_and_never_goes_negative(headers: dict[str, str]) -> None:
    info = parse_rate_limit_headers(headers, now=1.7e9)
    if info is None:
        return
    for value in (info.limit_requests, info.remaining_requests, info.limit_tokens,
                  info.remaining_tokens, info.reset_requests, info.reset_tokens):  # fmt: skip
        assert value is None or value >= 0
    for reset in (info.reset_requests, info.reset_tokens):
        assert reset is None or reset <= 86400


@pytest.mark.parametrize(
    ("remaining", "resets", "expected"),
    [
        ((0, 5), (2.0, 9.0), 2.0),  # requests exhausted
        ((3, 0), (2.0, 9.0), 9.0),  # tokens exhausted
        ((3, 5), (2.0, 9.0), 9.0),  # neither: the longer reset
        ((3, 5), (None, None), None),
    ],
)
def test_exhausted_reset(
    remaining: tuple[int, int], resets: tuple[float | None, float | None], expected: float | None
) -> None:
    info = RateLimitHeaders(None, remaining[0], resets[0], None, remaining[1], resets[1])
    assert info.exhausted_reset() == expected


# --- pacing from the headers ---------------------------------------------------------------


def test_a_gauge_replenishes_linearly_until_the_reset() -> None:
    gauge = Gauge()
    gauge.observe(limit=10, remaining=0, reset=10.0, now=100.0)
    assert gauge.available(100.0) == 0
    assert gauge.available(105.0) == pytest.approx(5)
    assert gauge.wait(1, 100.0) == pytest.approx(1.0)
    assert gauge.wait(4, 102.0) == pytest.approx(2.0)
    assert gauge.wait(50, 100.0) == pytest.approx(10.0)  # more than the limit: the reset
    assert gauge.wait(50, 110.0) == 0.0  # after the reset nothing is known: go
    gauge.take(3, 105.0)
    assert gauge.available(105.0) == pytest.approx(2)


def test_a_gauge_without_a_limit_waits_for_the_reset() -> None:
    gauge = Gauge()
    gauge.observe(limit=None, remaining=2, reset=4.0, now=0.0)
    assert gauge.wait(2, 0.0) == 0.0
    assert gauge.wait(3, 1.0) == pytest.approx(3.0)


def test_hints_cost_nothing_until_headers_are_seen() -> None:
    hints = ServerHints()
    assert hints.wait(10**9, 0.0) == 0.0
    hints.take(5, 0.0)
    hints.observe(RateLimitHeaders(100, 0, 1.0, 1000, 1000, 60.0), now=0.0)
    assert hints.wait(10, 0.0) == pytest.approx(0.01)  # requests: 100 per second back
    assert hints.wait(10, 2.0) == 0.0
