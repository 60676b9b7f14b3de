"""A tenant's budget: calls stop before the one that would overspend it, which never
reaches the upstream; other tenants go on."""

from __future__ import annotations

import openai
import pytest

from llmfast.gateway import GatewayConfigError, parse_config
from llmfast.testing import MockServer

from .conftest import TEAM_A_KEY, TEAM_B_KEY, MakeGateway, standard_config


async def test_a_spent_token_budget_stops_calls_before_they_are_sent(
    upstream: MockServer, make_gateway: MakeGateway
) -> None:
    config = standard_config(upstream).replace(
        'key_env = "TEAM_A_KEY"', 'key_env = "TEAM_A_KEY"\nbudget_tokens = 300'
    )
    prompt = "one two three four five six seven eight"
    used = 0
    successes = 0
    async with (
        make_gateway(config) as gateway,
        openai.AsyncOpenAI(
            base_url=gateway.url + "/v1", api_key=TEAM_A_KEY, max_retries=0
        ) as client,
    ):
        with pytest.raises(openai.RateLimitError) as caught:
            for _ in range(100):
                reply = await client.chat.completions.create(
                    model="fast", max_tokens=12, messages=[{"role": "user", "content": prompt}]
                )
                assert reply.usage is not None
                used += reply.usage.total_tokens
                successes += 1
        async with openai.AsyncOpenAI(
            base_url=gateway.url + "/v1", api_key=TEAM_B_KEY, max_retries=0
        ) as other:  # no budget of its own: not held back
            await other.chat.completions.create(
                model="other", messages=[{"role": "user", "content": "hi"}]
            )
    assert caught.value.code == "budget_exceeded"
    assert successes >= 5
    assert used <= 300  # each call was checked against its estimate before it was sent
    assert upstream.request_count == successes + 1  # the refused call never left
    assert "budget" in caught.value.message


async def test_budget_settings_are_checked(upstream: MockServer) -> None:
    text = standard_config(upstream).replace(
        'key_env = "TEAM_A_KEY"', 'key_env = "TEAM_A_KEY"\nbudget_usd = 1\nbudget_tokens = 5'
    )
    with pytest.raises(GatewayConfigError, match="one of budget_usd and budget_tokens"):
        parse_config(text)
