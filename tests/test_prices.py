"""Golden costs: recorded usage of each provider (cache reads, cache writes, reasoning,
long context, a batch result) priced by llmfast equals the hand calculation from the
providers' published prices; an unknown price is ``None``, never 0.

Published prices used (dollars per million tokens; the same figures genai-prices'
data records, which the built-in table reads):

- Anthropic Claude Sonnet 4.5 (https://docs.anthropic.com/en/docs/about-claude/pricing):
  input 3, output 15, 5-minute cache write 3.75, 1-hour write 6, cache read 0.30; over
  200k input tokens 6 / 22.5 / 0.60; Message Batches half price.
- OpenAI (https://platform.openai.com/docs/pricing): gpt-4o input 2.50, cached 1.25,
  output 10 (batch: 1.25 / 1.25 / 5); o4-mini input 1.10, cached 0.275, output 4.40.
- Gemini 2.5 Pro (https://ai.google.dev/gemini-api/docs/pricing): up to 200k input
  tokens 1.25 in, 0.125 cached, 10 out; above 2.50 / 0.25 / 15.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmfast import ChatCompletion, Price, Prices, Stats, Usage
from llmfast.backends import _anthropic_wire as anthropic_wire
from llmfast.backends import _gemini_wire as gemini_wire
from llmfast.errors import ConfigurationError
from tests.test_usage import (
    ANTHROPIC_READ,
    ANTHROPIC_WRITE,
    GEMINI,
    OPENAI_CACHED,
    OPENAI_REASONING,
)

genai_prices = pytest.importorskip("genai_prices")

PRICES = Prices()


def _openai(payload: Mapping[str, object]) -> Usage:
    usage = msgspec.json.decode(json.dumps(payload).encode(), type=ChatCompletion).usage
    assert usage is not None
    return usage


def _anthropic(payload: Mapping[str, object]) -> Usage:
    usage = anthropic_wire.completion_from(json.dumps(payload).encode()).usage
    assert usage is not None
    return usage


def _dollars(dollars: float | None) -> float:
    assert dollars is not None
    return dollars


def test_the_price_data_has_a_version() -> None:
    assert PRICES.version == f"genai-prices {genai_prices.__version__}"


def test_openai_cached_input_is_billed_at_the_cached_price() -> None:
    usage = _openai(OPENAI_CACHED)  # 2006 in (1920 cached), 300 out
    by_hand = (86 * 2.50 + 1920 * 1.25 + 300 * 10) / 1e6
    assert _dollars(PRICES.cost(usage, "gpt-4o")) == pytest.approx(by_hand, rel=1e-12)


def test_openai_reasoning_tokens_are_billed_as_output() -> None:
    usage = _openai(OPENAI_REASONING)  # 75 in, 1186 out of which 1024 reasoning
    by_hand = (75 * 1.10 + 1186 * 4.40) / 1e6
    assert _dollars(PRICES.cost(usage, "o4-mini")) == pytest.approx(by_hand, rel=1e-12)


def test_anthropic_cache_writes_and_reads() -> None:
    written = _anthropic(ANTHROPIC_WRITE)  # 21 uncached, 188086 written (5 min), 393 out
    by_hand = (21 * 3 + 188086 * 3.75 + 393 * 15) / 1e6
    assert _dollars(PRICES.cost(written, "claude-sonnet-4-5")) == pytest.approx(by_hand, rel=1e-12)
    read = _anthropic(ANTHROPIC_READ)  # 21 uncached, 188086 read, 393 out
    by_hand = (21 * 3 + 188086 * 0.30 + 393 * 15) / 1e6
    assert _dollars(PRICES.cost(read, "claude-sonnet-4-5")) == pytest.approx(by_hand, rel=1e-12)


def test_anthropic_one_hour_cache_writes_cost_more() -> None:
    payload = {
        **ANTHROPIC_WRITE,
        "usage": {
            "input_tokens": 50,
            "cache_creation_input_tokens": 3000,
            "cache_read_input_tokens": 1000,
            "cache_creation": {
                "ephemeral_5m_input_tokens": 1000,
                "ephemeral_1h_input_tokens": 2000,
            },
            "output_tokens": 100,
        },
    }
    by_hand = (50 * 3 + 1000 * 3.75 + 2000 * 6 + 1000 * 0.30 + 100 * 15) / 1e6
    cost = PRICES.cost(_anthropic(payload), "claude-sonnet-4-5")
    assert _dollars(cost) == pytest.approx(by_hand, rel=1e-12)


def test_long_context_tiers_price_the_whole_request_at_the_higher_rate() -> None:
    # Gemini 2.5 Pro, 300k prompt tokens of which 100k cached, 1000 out (thoughts incl.)
    usage = Usage(300_000, 1000, 301_000, {"cached_tokens": 100_000})
    by_hand = (200_000 * 2.50 + 100_000 * 0.25 + 1000 * 15) / 1e6
    assert _dollars(PRICES.cost(usage, "gemini-2.5-pro")) == pytest.approx(by_hand, rel=1e-12)
    # Claude Sonnet 4.5 past 200k input tokens, cache reads counted in the threshold.
    usage = _anthropic(
        {
            **ANTHROPIC_READ,
            "usage": {
                "input_tokens": 150_000,
                "cache_read_input_tokens": 60_000,
                "output_tokens": 10,
            },
        }
    )
    by_hand = (150_000 * 6 + 60_000 * 0.60 + 10 * 22.5) / 1e6
    assert _dollars(PRICES.cost(usage, "claude-sonnet-4-5")) == pytest.approx(by_hand, rel=1e-12)


def test_gemini_cached_content_thoughts_and_audio() -> None:
    usage = gemini_wire.completion_from(json.dumps(GEMINI).encode()).usage
    assert usage is not None  # 12000 in (10000 cached, 500 audio), 700 out (400 thoughts)
    # Gemini 2.5 Pro has no audio price of its own: audio input is billed as input.
    by_hand = (1500 * 1.25 + 500 * 1.25 + 10_000 * 0.125 + 700 * 10) / 1e6
    assert _dollars(PRICES.cost(usage, "gemini-2.5-pro")) == pytest.approx(by_hand, rel=1e-12)


def test_a_batch_result_is_billed_at_the_batch_rate() -> None:
    # How a provider-batch result is marked: Usage.batch (the batch runner sets it).
    written = msgspec.structs.replace(_anthropic(ANTHROPIC_WRITE), batch=True)
    by_hand = (21 * 1.5 + 188086 * 1.875 + 393 * 7.5) / 1e6
    assert _dollars(PRICES.cost(written, "claude-sonnet-4-5")) == pytest.approx(by_hand, rel=1e-12)
    cached = msgspec.structs.replace(_openai(OPENAI_CACHED), batch=True)
    by_hand = (86 * 1.25 + 1920 * 1.25 + 300 * 5) / 1e6
    assert _dollars(PRICES.cost(cached, "gpt-4o")) == pytest.approx(by_hand, rel=1e-12)
    # ...or priced as a batch by asking.
    plain = _openai(OPENAI_CACHED)
    assert PRICES.cost(plain, "gpt-4o", batch=True) == PRICES.cost(cached, "gpt-4o")
    assert PRICES.cost(cached, "gpt-4o", batch=False) == PRICES.cost(plain, "gpt-4o")


def test_unknown_prices_are_none_never_zero() -> None:
    usage = Usage(100, 10, 110)
    assert PRICES.cost(usage, "llama3.2:1b-local") is None
    assert PRICES.price("llama3.2:1b-local") is None
    # A batch result on a price without a batch rate: unknown, not the standard price.
    mine = Prices({"mine": Price(1.0, 2.0)}, builtin=False)
    assert mine.cost(msgspec.structs.replace(usage, batch=True), "mine") is None
    assert mine.cost(usage, "mine") == pytest.approx((100 * 1 + 10 * 2) / 1e6)
    # Without the table, only your prices.
    assert Prices(builtin=False).cost(usage, "gpt-4o") is None
    assert Prices(builtin=False).version is None


def test_overrides_win_over_the_table_with_their_own_cache_and_batch_rates() -> None:
    price = Price(input=2.0, output=8.0, cache_read=0.5)
    prices = Prices({"gpt-4o": price._replace(batch=price.discounted(0.5))})
    usage = _openai(OPENAI_CACHED)
    assert _dollars(prices.cost(usage, "gpt-4o")) == pytest.approx(
        (86 * 2 + 1920 * 0.5 + 300 * 8) / 1e6, rel=1e-12
    )
    batch = msgspec.structs.replace(usage, batch=True)
    assert _dollars(prices.cost(batch, "gpt-4o")) == pytest.approx(
        (86 * 1 + 1920 * 0.25 + 300 * 4) / 1e6, rel=1e-12
    )
    # A plain (input, output) price bills cached input at the input price (the old meaning).
    legacy = Prices({"m": (2.0, 8.0)}, builtin=False)
    assert _dollars(legacy.cost(usage, "m")) == pytest.approx((2006 * 2 + 300 * 8) / 1e6)
    with pytest.raises(ConfigurationError):
        Prices({"m": Price(-1.0, 1.0)})
    with pytest.raises(ConfigurationError):
        Prices({"m": "free"})  # type: ignore[dict-item]


texts = st.integers(min_value=0, max_value=400_000)


@settings(max_examples=60, deadline=None)
@given(
    model=st.sampled_from(["gpt-4o", "o4-mini", "claude-sonnet-4-5", "gemini-2.5-pro"]),
    uncached=texts,
    read=texts,
    write=texts,
    output=st.integers(min_value=0, max_value=100_000),
    batch=st.booleans(),
)
def test_costs_agree_with_genai_prices_own_calculation(
    model: str, uncached: int, read: int, write: int, output: int, batch: bool
) -> None:
    if not model.startswith("claude"):
        write = 0  # only Anthropic bills cache writes
    prompt = uncached + read + write
    usage = Usage(
        prompt, output, prompt + output, {"cached_tokens": read, "cache_creation_tokens": write}
    )
    usage = msgspec.structs.replace(usage, batch=batch)
    theirs = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=prompt,
            cache_read_tokens=read,
            cache_write_tokens=write,
            output_tokens=output,
        ),
        model,
        price_context={"processing": "batch"} if batch else None,
    )
    assert PRICES.cost(usage, model) == pytest.approx(
        float(theirs.total_price), rel=1e-9, abs=1e-12
    )


def test_stats_report_cost_cache_ratio_and_the_data_version() -> None:
    stats = Stats()
    assert stats.price_table.version == PRICES.version
    snapshot = stats.snapshot()
    assert snapshot.price_data == PRICES.version
    assert snapshot.prompt_cache_hit_ratio is None
    assert "genai-prices" in str(snapshot)


def test_import_llmfast_does_not_load_the_price_table() -> None:
    code = "import sys, llmfast; print('genai_prices' in sys.modules, 'pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


_IN_A_LOOP = """
import asyncio, json, sys
import llmfast
from llmfast.events import Event, call_summary

async def main():
    stats = llmfast.Stats()  # as Client(stats=True) makes it, inside the loop
    loaded = "genai_prices" in sys.modules
    request = llmfast.Request(llmfast.ChatRequest(model="gpt-4o", messages=[]))
    usage = llmfast.Usage(2006, 300, 2306, {"cached_tokens": 1920})
    stats(Event("done", request, 0.1, call_summary(request, None, usage)))
    still = "genai_prices" in sys.modules
    await asyncio.to_thread(stats.load_prices)
    print(json.dumps([loaded, still, stats.snapshot().cost]))

asyncio.run(main())
"""


def test_stats_made_in_a_running_loop_load_the_table_off_it_and_price_later() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _IN_A_LOOP], capture_output=True, text=True, check=True
    )
    loaded, still, cost = json.loads(out.stdout)
    assert (loaded, still) == (False, False)
    assert cost == pytest.approx((86 * 2.50 + 1920 * 1.25 + 300 * 10) / 1e6, rel=1e-12)
