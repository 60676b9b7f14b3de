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


@given(
    limit=st.integers(min_value=1, max_value=10),
    period=st.sampled_from([0.5, 1.0, 7.0]),
    calls=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=2),  # gap before the call
            st.floats(min_value=0, max_value=1),  # delivery, as a fraction of the margin
            st.floats(min_value=0, max_value=3),  # then until the reply is in
        ),
        min_size=1,
        max_size=60,
    ),
)
def test_arrivals_within_the_margin_never_exceed_the_limit(
    limit: int, period: float, calls: list[tuple[float, float, float]]
) -> None:
    """Each admission reaches the provider within ``margin``, in any order, and is
    settled when its reply comes: no window of arrivals ever holds more than the limit."""
    margin = period / 10
    window = SlidingWindow(limit, period, margin)
    now = 0.0
    replies: list[tuple[float, list[float]]] = []  # (when the reply is in, the entry)
    arrivals: list[float] = []

    def settle_due() -> None:
        for reply in sorted((r for r in replies if r[0] <= now), key=lambda r: r[0]):
            replies.remove(reply)
            SlidingWindow.settle(reply[1], reply[0])

    for gap, delivery, reply in calls:
        now += gap
        settle_due()
        while (wait := window.wait(1, now)) > 0:
            now = min([now + wait, *(r[0] for r in replies if r[0] > now)])
            settle_due()
        entry = window.add(1, now)
        arrived = now + delivery * margin
        arrivals.append(arrived)
        replies.append((arrived + reply, entry))
    arrivals.sort()
    for i, start in enumerate(arrivals):
        inside = [t for t in arrivals[i:] if t < start + period - 1e-6]
        assert len(inside) <= limit


def test_an_admission_counts_from_its_margin_until_settled() -> None:
    window = SlidingWindow(1, 10.0, margin=2.0)
    entry = window.add(1, 0.0)
    assert window.wait(1, 0.0) == 12.0  # it may reach the provider as late as 2.0
    SlidingWindow.settle(entry, 0.5)  # its reply came at 0.5
    assert window.wait(1, 0.5) == 10.0
    SlidingWindow.settle(entry, 3.0)  # a later settle never moves it later
    assert window.wait(1, 0.5) == 10.0
    assert window.used(10.5) == 0
    SlidingWindow.settle(entry, 11.0)  # gone: nothing changes
    window.correct(entry, 5)
    assert window.used(10.5) == 0


def test_a_settled_entry_leaves_after_the_unsettled_one_before_it() -> None:
    window = SlidingWindow(2, 10.0, margin=1.0)
    slow = window.add(1, 0.0)
    fast = window.add(1, 0.1)
    SlidingWindow.settle(fast, 0.2)
    assert slow[0] == 1.0
    assert window.wait(1, 0.2) == 10.8  # both leave once the slow one has, at 11.0


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


async def test_the_local_budget_settles_both_windows_and_corrects_tokens() -> None:
    now = [0.0]
    budget = LocalBudget(requests=1, tokens=100, period=10.0, clock=lambda: now[0], margin=1)
    wait, ticket = await budget.reserve(30)
    assert wait == 0
    assert budget.wait_now(80) == 11.0
    now[0] = 0.25
    await budget.settle(ticket, -20)  # the reply: 10 tokens used
    assert budget.used() == (1, 10)
    assert budget.wait_now(1) == 10.0  # from 0.25 on
    now[0] = 10.25
    assert budget.used() == (0, 0)


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


def test_admissions_recorded_from_elsewhere_do_not_pile_up() -> None:
    window = SlidingWindow(1, 1.0)
    for i in range(1000):
        window.record(1, i * 0.1)  # never checked against the limit
    assert len(window._log) == 10  # the last second's only
    assert window.used(99.9) == 10
