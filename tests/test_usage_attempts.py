"""Every attempt counts: a call's usage and cost sum all its attempts, as the server
reported them, on the completion, in the ``done`` event and in ``Stats``."""

from __future__ import annotations

from typing import Any

import pytest

from llmfast import Client, Event, Price, Stats, StreamInterruptedError, Usage
from llmfast.backends.anthropic import AnthropicBackend
from llmfast.layers.retry import Retry
from llmfast.router import Router
from llmfast.testing import MockServer, Reply

OVERLOADED = {"type": "overloaded_error", "message": "Overloaded"}
PRICE = Price(input=3.0, output=15.0)  # dollars per million tokens


async def _instant(seconds: float) -> None:
    return None


def anthropic(server: MockServer, hook: Any, **options: Any) -> Client:
    return Client(
        provider="anthropic",
        base_url=server.url_for("anthropic"),
        api_key="k",
        model="claude-test",
        on_event=hook,
        **options,
    )


async def test_a_call_that_retries_twice_reports_all_three_attempts(server: MockServer) -> None:
    """Done-when. Each failed attempt is an Anthropic stream that sent message_start (its
    usage: the whole prompt read, one token out) and then an overloaded_error event,
    before any chunk reached the caller: retried, and billed by the provider."""
    stats = Stats(prices={"claude-test": PRICE}, builtin_prices=False)
    done: list[Event] = []

    def hook(event: Event) -> None:
        stats(event)
        if event.name == "done":
            done.append(event)

    failing = Reply.stream_error(OVERLOADED, after_chunks=1).with_cache(read=2)
    server.enqueue(failing, failing, Reply.text("fine thanks").with_cache(read=2))
    retry = Retry(max_attempts=3, sleep=_instant)
    async with anthropic(server, hook, layers=[retry]) as c, c.stream("how are you") as s:
        completion = await s.collect()
    assert server.request_count == 3
    final = completion.usage
    assert final is not None
    prompt = final.input_tokens  # the same prompt each time
    assert final.cache_read_tokens == 2
    # The earlier attempts' reported usage: the prompt and one output token each.
    assert completion.earlier_usage is not None
    assert (completion.earlier_usage.input_tokens, completion.earlier_usage.output_tokens) == (
        2 * prompt,
        2,
    )
    total = completion.total_usage
    assert total is not None
    assert (total.input_tokens, total.output_tokens) == (3 * prompt, final.output_tokens + 2)
    assert total.cache_read_tokens == 6
    # The done event reports the call's totals (what OpenTelemetry records too).
    data = done[0].data
    assert (data["prompt_tokens"], data["completion_tokens"]) == (
        total.input_tokens,
        total.output_tokens,
    )
    assert data["cache_read_tokens"] == 6
    # Stats: by hand, each attempt's uncached and cached input at the input price
    # (no cache price given) and its output at the output price.
    snapshot = stats.snapshot()
    expected = (3 * prompt * 3.0 + (final.output_tokens + 2) * 15.0) / 1e6
    assert snapshot.cost == pytest.approx(expected, rel=1e-12)
    assert (snapshot.input_tokens, snapshot.retry.attempts) == (3 * prompt, 3)
    assert snapshot.prompt_cache_hit_ratio == pytest.approx(6 / (3 * prompt))


async def test_plain_500s_report_no_usage_so_only_the_success_counts(server: MockServer) -> None:
    """The honest counterpart: a 500 carries no usage, so "all three attempts" is the
    third attempt's usage plus nothing; the attempts are still counted."""
    stats = Stats(prices={"claude-test": PRICE}, builtin_prices=False)
    server.enqueue(Reply.error(500), Reply.error(500), Reply.text("fine"))
    async with anthropic(server, stats, layers=[Retry(max_attempts=3, sleep=_instant)]) as c:
        completion = await c.chat("hi")
    assert completion.earlier_usage is None
    assert completion.total_usage is completion.usage
    assert completion.usage is not None
    snapshot = stats.snapshot()
    assert snapshot.retry.attempts == 3
    assert snapshot.input_tokens == completion.usage.input_tokens


async def test_a_failover_counts_the_attempt_given_up(server: MockServer) -> None:
    seen: list[Event] = []
    url = server.url_for("anthropic")
    routes = [AnthropicBackend(url, api_key="k", model=f"m{i}") for i in range(2)]
    server.enqueue(Reply.stream_error(OVERLOADED, after_chunks=1), Reply.text("ok"))
    client = Client(Router(routes), layers=[], on_event=seen.append)
    async with client as c, c.stream("hello there") as s:
        completion = await s.collect()
    assert server.request_count == 2
    assert completion.usage is not None
    assert completion.earlier_usage is not None
    assert completion.earlier_usage.input_tokens == completion.usage.input_tokens
    done = next(e for e in seen if e.name == "done")
    assert done.data["prompt_tokens"] == 2 * completion.usage.input_tokens


async def test_structured_re_asks_sum_every_reply(server: MockServer) -> None:
    stats = Stats(prices={"claude-test": PRICE}, builtin_prices=False)
    bad = Reply.tool_calls([{"name": "Answer", "arguments": {"wrong": 1}}])
    good = Reply.tool_calls([{"name": "Answer", "arguments": {"value": 3}}])
    server.enqueue(bad, good)

    from msgspec import Struct

    class Answer(Struct):
        value: int

    async with anthropic(server, stats, layers=[]) as c:
        result = await c.chat("what is 1+2", output=Answer)
    assert result.output == Answer(3)
    assert result.attempts == 2
    assert result.usage is not None
    assert result.total_usage == result.usage
    snapshot = stats.snapshot()
    assert snapshot.input_tokens == result.usage.input_tokens  # both replies
    assert snapshot.output_tokens == result.usage.output_tokens
    assert isinstance(result.usage, Usage)


async def test_an_interrupted_stream_still_reports_its_prompts_usage(server: MockServer) -> None:
    """The connection drops after some chunks reached the caller: not retried, and the
    Anthropic stream's message_start usage (carried by its first chunk) is reported."""
    seen: list[Event] = []
    server.enqueue(Reply.reset(after_chunks=5))
    with pytest.raises(StreamInterruptedError) as caught:
        async with anthropic(server, seen.append) as c, c.stream("one two three") as s:
            async for _ in s:
                pass
    partial = caught.value.partial
    assert partial is not None
    assert partial.usage is not None
    assert partial.usage.input_tokens > 0
    done = next(e for e in seen if e.name == "done")
    assert done.data["prompt_tokens"] == partial.usage.input_tokens
    assert done.data["outcome"] != "ok"
