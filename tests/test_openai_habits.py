"""Habits from the ``openai`` SDK work, or say what to do instead, before any request."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import llmfast
from llmfast import ChatRequest, Client, ConfigurationError, SyncClient, UserMessage
from llmfast.backends.openai import version_hint
from llmfast.testing import MockServer
from tests.test_sync import ThreadedServer

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "hello there"},
]


@pytest.fixture
async def client(server: MockServer) -> AsyncIterator[Client]:
    async with Client(base_url=server.url, model="default-model") as client:
        yield client


async def test_messages_keyword_works_like_the_openai_sdk(
    server: MockServer, client: Client
) -> None:
    reply = await client.chat(messages=MESSAGES, model="gpt-x", max_tokens=5)
    assert reply.text == "hello there"
    sent = server.requests[0].json
    assert sent["messages"] == MESSAGES
    assert sent["model"] == "gpt-x"
    assert sent["max_tokens"] == 5
    async with client.stream(messages=[UserMessage(content="a b")]) as stream:
        assert (await stream.collect()).text == "a b"
    assert server.requests[1].json["model"] == "default-model"


async def test_a_prompt_and_messages_together_or_neither_is_a_type_error(
    server: MockServer, client: Client
) -> None:
    with pytest.raises(TypeError, match="a prompt or messages=, not both"):
        await client.chat("x", messages=MESSAGES)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="needs a prompt"):
        await client.chat()  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="needs a prompt"):
        client.stream(model="m")  # type: ignore[call-overload]
    assert server.request_count == 0


async def test_stream_true_points_to_client_stream(server: MockServer, client: Client) -> None:
    with pytest.raises(TypeError, match=r"client\.stream\(\.\.\.\)") as caught:
        await client.chat(messages=MESSAGES, stream=True)  # type: ignore[call-overload]
    assert "async with client.stream(" in str(caught.value)
    with pytest.raises(TypeError, match="never streams"):
        await client.chat("x", stream=False)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="always streams"):
        client.stream("x", stream=True)  # type: ignore[call-overload]
    assert server.request_count == 0


async def test_other_unknown_keywords_stay_configuration_errors(client: Client) -> None:
    with pytest.raises(ConfigurationError, match="temprature"):
        await client.chat("x", temprature=0.5)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    "prompt",
    [[], (), ChatRequest(model="m", messages=[])],
    ids=["list", "tuple", "ChatRequest"],
)
async def test_no_messages_is_refused_before_sending(
    server: MockServer, client: Client, prompt: llmfast.client.Prompt
) -> None:
    with pytest.raises(ConfigurationError, match="no messages"):
        await client.chat(prompt)
    with pytest.raises(ConfigurationError, match="no messages"):
        client.stream(prompt)
    assert server.request_count == 0


async def test_empty_messages_keyword_is_refused(server: MockServer, client: Client) -> None:
    with pytest.raises(ConfigurationError, match="no messages"):
        await client.chat(messages=[])
    with pytest.raises(ConfigurationError, match="no messages"):
        client.stream(messages=())
    assert server.request_count == 0


async def test_a_404_without_v1_suggests_it(server: MockServer) -> None:
    async with Client(base_url=server.root_url, model="m") as client:
        with pytest.raises(llmfast.NotFoundError) as caught:
            await client.chat("hi")
    assert f"did you mean base_url='{server.root_url}/v1'?" in str(caught.value)
    assert caught.value.status == 404
    assert server.request_count == 1  # a 404 is not retried
    async with Client(base_url=server.root_url + "/v1", model="m") as client:
        assert (await client.chat("hi")).text == "hi"


async def test_a_404_under_v1_has_no_hint(server: MockServer) -> None:
    async with Client(base_url=server.url + "/nope", model="m") as client:
        with pytest.raises(llmfast.NotFoundError) as caught:
            await client.chat("hi")
    assert "did you mean" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("http://host:8000", "did you mean base_url='http://host:8000/v1'?"),
        ("http://host:8000/", "did you mean base_url='http://host:8000/v1'?"),
        ("https://proxy.example.com/openai", "base_url='https://proxy.example.com/openai/v1'"),
        ("https://api.openai.com/v1", None),
        ("https://generativelanguage.googleapis.com/v1beta/openai", None),
        ("https://api.groq.com/openai/v1", None),
        ("http://user:pw@host:8000", "the base_url has no /v1"),
        ("http://host:8000?key=secret", "the base_url has no /v1"),
    ],
)
def test_version_hint(url: str, hint: str | None) -> None:
    got = version_hint(url)
    if hint is None:
        assert got is None
    else:
        assert got is not None
        assert hint in got
        assert "pw" not in got
        assert "secret" not in got


def test_a_sync_client_takes_messages_too() -> None:
    server = ThreadedServer()
    try:
        with SyncClient(base_url=server.url, model="m") as client:
            assert client.chat(messages=MESSAGES).text == "hello there"
            with client.stream(messages=MESSAGES) as stream:
                assert "".join(stream.text_deltas()) == "hello there"
            with pytest.raises(TypeError, match=r"client\.stream"):
                client.chat(messages=MESSAGES, stream=True)  # type: ignore[call-overload]
    finally:
        server.close()
