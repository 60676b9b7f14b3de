"""Fixtures of the gateway tests: upstream test servers, virtual keys in the
environment, and a running gateway built from a TOML text."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from llmfast.gateway import Gateway, parse_config
from llmfast.testing import MockServer

UPSTREAM_KEY = "sk-upstream-secret-0123456789abcdef"
TEAM_A_KEY = "vk-team-a-0123456789"
TEAM_B_KEY = "vk-team-b-9876543210"

MakeGateway = Callable[[str], AbstractAsyncContextManager[Gateway]]


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTREAM_KEY", UPSTREAM_KEY)
    monkeypatch.setenv("TEAM_A_KEY", TEAM_A_KEY)
    monkeypatch.setenv("TEAM_B_KEY", TEAM_B_KEY)
    for name in ("OPENAI_BASE_URL", "LLMFAST_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def upstream() -> AsyncIterator[MockServer]:
    async with MockServer() as server:
        yield server


@pytest.fixture
async def second_upstream() -> AsyncIterator[MockServer]:
    async with MockServer() as server:
        yield server


@pytest.fixture
def make_gateway() -> MakeGateway:
    @asynccontextmanager
    async def make(text: str) -> AsyncIterator[Gateway]:
        async with Gateway(parse_config(text, source="test.toml")) as gateway:
            yield gateway

    return make


def standard_config(upstream: MockServer, *, extra: str = "", model_extra: str = "") -> str:
    """Two tenants (team-a may use every model, team-b only "other"), two models."""
    return f"""
[server]
listen = "127.0.0.1:0"
max_body_bytes = 100_000
grace = 5

[models.fast]
retry = 1
{model_extra}
[[models.fast.deployments]]
provider = "openai"
base_url = "{upstream.url}"
api_key_env = "UPSTREAM_KEY"
model = "upstream-model"

[models.other]
[[models.other.deployments]]
provider = "openai"
base_url = "{upstream.url}"
api_key_env = "UPSTREAM_KEY"
model = "other-upstream-model"

[keys.team-a]
key_env = "TEAM_A_KEY"

[keys.team-b]
key_env = "TEAM_B_KEY"
models = ["other"]
{extra}
"""
