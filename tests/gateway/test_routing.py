"""The gateway's routes: found as aiohttp's application found them (``HEAD`` with
``GET``, ``Expect: 100-continue``), with unknown paths and methods answered in the
provider's error shape."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from llmfast.gateway import Gateway
from llmfast.testing import MockServer

from .conftest import TEAM_A_KEY, MakeGateway, standard_config

_AUTH = {"Authorization": f"Bearer {TEAM_A_KEY}"}
_BODY = b'{"model": "fast", "messages": [{"role": "user", "content": "hi there"}]}'
_TIMEOUT = aiohttp.ClientTimeout(total=10)


@pytest.fixture
async def gateway(upstream: MockServer, make_gateway: MakeGateway) -> AsyncIterator[Gateway]:
    async with make_gateway(standard_config(upstream)) as gateway:
        yield gateway


@pytest.mark.parametrize("path", ["/v1/nothing", "/v1/chat/completions/", "/", "/v1/models/x"])
async def test_an_unknown_path_is_a_404_in_openais_shape(gateway: Gateway, path: str) -> None:
    async with (
        aiohttp.ClientSession(timeout=_TIMEOUT) as session,
        session.post(gateway.url + path, data=_BODY, headers=_AUTH) as response,
    ):
        assert response.status == 404
        assert response.content_type == "application/json"
        error = (await response.json())["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert path in error["message"]


@pytest.mark.parametrize(
    ("method", "path", "allow", "kind"),
    [
        ("GET", "/v1/chat/completions", "POST", "openai"),
        ("PUT", "/v1/embeddings", "POST", "openai"),
        ("POST", "/v1/models", "GET,HEAD", "openai"),
        ("DELETE", "/health", "GET,HEAD", "openai"),
        ("GET", "/v1/messages", "POST", "anthropic"),
    ],
)
async def test_another_method_is_a_405_naming_the_allowed_ones(
    gateway: Gateway, upstream: MockServer, method: str, path: str, allow: str, kind: str
) -> None:
    async with (
        aiohttp.ClientSession(timeout=_TIMEOUT) as session,
        session.request(method, gateway.url + path, headers=_AUTH) as response,
    ):
        assert response.status == 405
        assert response.headers["Allow"] == allow
        answer = await response.json()
    if kind == "openai":
        assert set(answer["error"]) == {"message", "type", "param", "code"}
    else:  # Anthropic's shape
        assert answer["type"] == "error"
        assert set(answer["error"]) == {"type", "message"}
    assert method in answer["error"]["message"]
    assert upstream.request_count == 0


async def test_head_is_served_where_get_is(gateway: Gateway) -> None:
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as session:
        async with session.head(gateway.url + "/health") as response:
            assert response.status == 200
            assert await response.read() == b""
        async with session.head(gateway.url + "/v1/models", headers=_AUTH) as response:
            assert response.status == 200
        async with session.head(gateway.url + "/v1/models") as response:
            assert response.status == 401  # the key check as for GET


async def test_expect_100_continue_gets_its_continue(
    gateway: Gateway, upstream: MockServer
) -> None:
    """A client that waits for ``100 Continue`` before its body (curl does, for a large
    one) is not left waiting."""
    async with (
        aiohttp.ClientSession(timeout=_TIMEOUT) as session,
        session.post(
            gateway.url + "/v1/chat/completions", data=_BODY, headers=_AUTH, expect100=True
        ) as response,
    ):
        assert response.status == 200
        reply = await response.json()
    assert reply["choices"][0]["message"]["content"] == "hi there"
    assert upstream.request_count == 1


async def test_another_expectation_is_a_417(gateway: Gateway, upstream: MockServer) -> None:
    headers = {**_AUTH, "Expect": "something-else"}
    async with (
        aiohttp.ClientSession(timeout=_TIMEOUT) as session,
        session.post(gateway.url + "/v1/chat/completions", data=_BODY, headers=headers) as response,
    ):
        assert response.status == 417
    assert upstream.request_count == 0
