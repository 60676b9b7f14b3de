"""The local sliding window and budget, and the token estimators."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import llmfast
from llmfast import ChatRequest, EmbeddingRequest
from llmfast.limits import (
    CharEstimator,
    LocalBudget,
    SlidingWindow,
    TiktokenEstimator,
    default_estimator,
)

# --- the sliding window -------------------------------------------------------------


@given(
    limit=st.integers(min_value=1, max_value=20),
    period=st.sampled_from([0.5, 1.0, 7.0, 60.0]),
    calls=st.lists(
        st.tuples(st.floats(min_value=0, max_value=5), st.integers(min_value=1, max_value=25)),
        min_size=1,
        max_size=60,
    ),
)
def test_no_window_ever_holds_more_than_the_limit(
    limit: int, period: float, calls: list[tuple[float, int]]
) -> None:
    """Calls arrive at random gaps and each waits exactly what the window says; a
    call above the limit goes alone. No window of ``period`` ever holds more."""
    window = SlidingWindow(limit, period)
    now = 0.0
    admitted: list[tuple[float, int]] = []
    for gap, amount in calls:
        now += gap
        wait = window.wait(amount, now)
        assert wait >= 0
        if wait:
            now += wait
            assert window.wait(amount, now) == 0  # the wait given was enough
        window.add(amount, now)
        admitted.append((now, amount))
    for start, amount in admitted:  # windows exact to the microsecond the window allows
        inside = [a for t, a in admitted if start <= t < start + period - 1e-6]
        assert sum(inside) <= limit or inside == [amount]


def test_a_correction_changes_an_admission_until_it_leaves() -> None:
    window = SlidingWindow(100, 10.0)
    entry = window.add(60, 0.0)
    window.correct(entry, -50)
    assert window.used(1.0) == 10
    assert window.wait(90, 1.0) == 0
    late = window.add(5, 2.0)
    assert window.used(10.0) == 5  # the first has left the window
    window.correct(entry, 1000)  # so correcting it changes nothing
    assert window.used(10.0) == 5
    window.correct(late, 20)
    assert window.used(10.0) == 25


async def test_the_local_budget_reports_what_is_left() -> None:
    now = [0.0]
    budget = LocalBudget(requests=2, tokens=100, period=10.0, clock=lambda: now[0])
    assert (await budget.reserve(30))[0] == 0
    wait, ticket = await budget.reserve(30)
    assert wait == 0
    assert budget.available_requests == 0
    assert budget.available_tokens == 40
    assert await budget.reserve(1) == (10.0, None)
    await budget.correct(ticket, -20)
    assert budget.available_tokens == 60
    now[0] = 10.0
    assert budget.available_requests == 2
    await budget.pause(3.0)
    assert await budget.reserve(1) == (3.0, None)


# --- token estimates ----------------------------------------------------------------


def test_the_char_estimate_counts_every_part_of_a_chat() -> None:
    estimate = CharEstimator(chars_per_token=4, completion_tokens=100)
    body = ChatRequest(
        model="m",
        messages=[
            llmfast.SystemMessage("12345678"),  # 2
            {"role": "user", "content": [{"type": "text", "text": "abcd"},  # 1
                                         {"type": "image_url", "image_url": {"url": "x"}}]},  # 85
            llmfast.UserMessage([llmfast.TextPart("abcdefgh")]),  # 2
        ],
        max_tokens=50,
        n=2,
    )  # fmt: skip
    assert estimate(body) == 3 * 4 + 2 + 1 + 85 + 2 + 50 * 2
    default_completion = ChatRequest(model="m", messages=[{"role": "user", "content": ""}])
    assert estimate(default_completion) == 4 + 100
    newer = ChatRequest(model="m", messages=[], max_completion_tokens=7, max_tokens=99)
    assert estimate(newer) == 7


def test_tools_and_tool_calls_are_counted() -> None:
    estimate = CharEstimator(completion_tokens=0)
    bare = ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}])
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
    with_tools = ChatRequest(model="m", messages=bare.messages, tools=tools)
    assert estimate(with_tools) > estimate(bare) + 10
    call = llmfast.ToolCall("c1", llmfast.FunctionCall("lookup", '{"query": "weather"}'))
    asked = ChatRequest(model="m", messages=[llmfast.AssistantMessage(tool_calls=[call])])
    assert estimate(asked) > 4 + 5


def test_embedding_inputs_are_counted() -> None:
    estimate = CharEstimator(chars_per_token=2)
    assert estimate(EmbeddingRequest(model="m", input="abcd")) == 2
    assert estimate(EmbeddingRequest(model="m", input=["ab", "abcdef"])) == 4
    assert estimate(EmbeddingRequest(model="m", input=[1, 2, 3])) == 3
    assert estimate(EmbeddingRequest(model="m", input=[[1, 2], [3]])) == 3


def test_bad_estimator_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="chars_per_token"):
        CharEstimator(chars_per_token=0)


def test_tiktoken_is_the_default_when_installed_and_falls_back_to_characters() -> None:
    pytest.importorskip("tiktoken")
    estimator = default_estimator()
    assert isinstance(estimator, TiktokenEstimator)
    text = "The quick brown fox jumps over the lazy dog. " * 8
    if estimator.load():  # the encoding could be loaded (cached or downloaded)
        assert estimator.count(text) < CharEstimator().count(text)
        assert estimator.count("hello") == 1
    else:  # no network and no cache: characters, as promised
        assert estimator.count(text) == CharEstimator().count(text)
