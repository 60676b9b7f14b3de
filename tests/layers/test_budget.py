"""The Budget layer against the local test server: it stops a call before an attempt
that would overspend (the server's arrivals prove nothing was sent), and charges the
usage the server reported."""

from __future__ import annotations

from typing import Any

import pytest

import llmfast
from llmfast import Budget, BudgetExceededError, Client, Price
from llmfast.layers.retry import Retry
from llmfast.testing import MockServer, Reply

_CHAT = "/v1/chat/completions"


def client(server: MockServer, *layers: Any) -> Client:
    return Client(base_url=server.url, api_key="sk-test", model="m", layers=list(layers))


def fixed(tokens: int) -> Any:
    return lambda body: tokens


async def test_the_call_that_would_overspend_fails_before_it_is_sent(server: MockServer) -> None:
    budget = Budget(tokens=100, estimator=fixed(40))
    spent = 0
    async with client(server, budget) as c:
        calls = 0
        with pytest.raises(BudgetExceededError) as caught:
            while True:
                reply = await c.chat("one two three")  # usage as the server reports it
                assert reply.usage is not None
                spent += reply.usage.total_tokens
                calls += 1
        assert await budget.spent() == spent
    assert server.request_count == calls  # the refused attempt never arrived
    assert spent + 40 > 100  # refused only because the next estimate does not fit
    assert calls >= 2  # charged the actual usage (< the estimate), not the estimate
    error = caught.value
    assert (error.unit, error.limit, error.spent, error.needed) == ("tokens", 100.0, spent, 40)
    assert error.resets_in is None  # a budget in total


async def test_a_budget_in_dollars_prices_the_estimate_and_the_usage(server: MockServer) -> None:
    # $1 per input token and $2 per output token: the arithmetic is plain to see.
    prices = {"m": Price(input=1e6, output=2e6)}
    budget = Budget(usd=30.0, prices=prices, estimator=fixed(12), name="dollars")
    async with client(server, budget) as c:
        first = await c.chat("a b", max_tokens=2)  # estimate: 10 in + 2 out = $14
        assert first.usage is not None
        cost = first.usage.prompt_tokens * 1 + first.usage.completion_tokens * 2
        with pytest.raises(BudgetExceededError) as caught:
            for _ in range(30):
                await c.chat("a b", max_tokens=2)
    assert caught.value.unit == "usd"
    assert caught.value.needed == pytest.approx(14.0)
    assert caught.value.spent + 14.0 > 30.0
    assert caught.value.spent == pytest.approx(cost * (server.request_count))
    assert "dollars" in str(caught.value)


async def test_a_dollar_budget_refuses_an_unpriced_model_before_sending(
    server: MockServer,
) -> None:
    budget = Budget(usd=1.0, prices=llmfast.Prices(builtin=False), estimator=fixed(10))
    async with client(server, budget) as c:
        with pytest.raises(llmfast.ConfigurationError, match="no price"):
            await c.chat("hi", model="not-a-known-model-xyz")
    assert server.request_count == 0


async def test_a_failed_attempt_without_usage_costs_nothing_and_retries_are_checked(
    server: MockServer,
) -> None:
    budget = Budget(tokens=45, estimator=fixed(40))
    server.enqueue(Reply.error(500), Reply.error(500), Reply.text("ok"))
    async with client(server, Retry(max_attempts=3), budget) as c:
        reply = await c.chat("x")
        assert reply.usage is not None
        # Each 500 released its reservation: the third attempt still fitted (40 + 40
        # would not), and only the reported usage was charged.
        assert server.request_count == 3
        assert await budget.spent() == reply.usage.total_tokens


async def test_budgets_per_tenant_and_per_window(server: MockServer) -> None:
    now = [1000.0]
    budget = Budget(tokens=50, estimator=fixed(30), per="user", period=60, clock=lambda: now[0])
    async with client(server, budget) as c:
        await c.chat("x", user="acme")
        await c.chat("x", user="acme")  # ~ a few tokens spent: fits again
        await c.chat("x", user="globex")
        server.enqueue(*[Reply.text(" ".join(["w"] * 40))] * 2)
        await c.chat("x", user="acme")  # 40 tokens out: acme's window is nearly spent
        with pytest.raises(BudgetExceededError) as caught:
            await c.chat("x", user="acme")
        assert caught.value.budget.startswith("default:acme:")
        assert caught.value.resets_in == pytest.approx(20.0)  # 1000 s is 40 s into a window
        await c.chat("x", user="globex")  # another tenant: its own budget
        now[0] += 20.0  # the next window
        await c.chat("x", user="acme")


async def test_a_stream_is_charged_its_reported_usage(server: MockServer) -> None:
    budget = Budget(tokens=1000, estimator=fixed(500))
    async with client(server, budget) as c:
        async with c.stream("a b c") as s:
            completion = await s.collect()
        assert completion.usage is not None
        assert await budget.spent() == completion.usage.total_tokens


def test_budget_settings_are_checked() -> None:
    with pytest.raises(llmfast.ConfigurationError):
        Budget()
    with pytest.raises(llmfast.ConfigurationError):
        Budget(usd=1.0, tokens=1)
    with pytest.raises(llmfast.ConfigurationError):
        Budget(tokens=-1)
    with pytest.raises(llmfast.ConfigurationError):
        Budget(tokens=1, period=0)
    assert repr(Budget(tokens=5, period=60, name="n")) == "Budget(5 tokens per 60 s, name='n')"
