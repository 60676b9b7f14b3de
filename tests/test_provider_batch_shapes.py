"""Both providers' batch shapes: the transports read the payloads the published API
references print (tests/provider_batch_payloads.py, sources cited there), write request
lines of the documented shape, and the mock server answers with objects that hold every
documented field."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest

from llmfast import ChatCompletion, ChatRequest, Client
from llmfast.batch.provider.anthropic_batches import AnthropicBatches
from llmfast.batch.provider.api import ItemResult
from llmfast.batch.provider.openai_files import KEY_FIELD, OpenAIBatches
from llmfast.errors import BadRequestError
from llmfast.testing import MockServer
from tests import provider_batch_payloads as ref

REQUEST = ChatRequest(
    model="gpt-3.5-turbo-0125",
    messages=[
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hello world!"},
    ],
    max_tokens=1000,
)


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with MockServer() as server:
        yield server


def completion(item: ItemResult) -> ChatCompletion:
    assert isinstance(item.value, ChatCompletion), item
    return item.value


def tokens(item: ItemResult) -> int:
    usage = completion(item).usage
    assert usage is not None
    return usage.total_tokens


def apis(server: MockServer) -> tuple[OpenAIBatches, AnthropicBatches, list[Client]]:
    clients = [
        Client(provider=p, base_url=server.url_for(p), api_key="k", model="m")
        for p in ("openai", "anthropic")
    ]
    return OpenAIBatches(clients[0].backend), AnthropicBatches(clients[1].backend), clients


async def test_openai_documented_payloads_are_read(server: MockServer) -> None:
    openai, _, clients = apis(server)
    state = openai.state_of(ref.OPENAI_BATCH)
    assert (state.id, state.status, state.ended) == ("batch_abc123", "completed", True)
    assert state.counts == {"total": 100, "completed": 95, "failed": 5}
    ok = openai._item(ref.OPENAI_OUTPUT_LINE, {})
    assert ok.custom_id == "request-2"
    assert completion(ok).text == "Hello."
    assert tokens(ok) == 24
    assert openai._item(ref.OPENAI_EXPIRED_LINE, {}).again
    line = msgspec.json.decode(openai.line("request-1", REQUEST))
    assert line == msgspec.json.decode(ref.OPENAI_INPUT_LINE)
    for client in clients:
        await client.aclose()


async def test_anthropic_documented_payloads_are_read(server: MockServer) -> None:
    _, anthropic, clients = apis(server)
    state = anthropic.state_of(ref.ANTHROPIC_BATCH)
    assert (state.status, state.ended) == ("in_progress", False)
    assert state.counts["processing"] == 100
    ended = anthropic.state_of({**ref.ANTHROPIC_BATCH, "processing_status": "ended"})
    assert ended.ended
    ok = anthropic._item(ref.ANTHROPIC_SUCCEEDED_LINE)
    assert (completion(ok).text or "").startswith("Hello again!")
    assert tokens(ok) == 47
    bad = anthropic._item(ref.ANTHROPIC_ERRORED_LINE)
    assert isinstance(bad.error, BadRequestError)
    assert "max_tokens" in str(bad.error)
    assert anthropic._item(ref.ANTHROPIC_EXPIRED_LINE).again
    assert anthropic._item(ref.ANTHROPIC_CANCELED_LINE).again
    line = msgspec.json.decode(anthropic.line("my-first-request", REQUEST))
    assert set(line) == {"custom_id", "params"}
    assert line["params"]["system"] == "You are a helpful assistant."
    assert line["params"]["max_tokens"] == 1000
    for client in clients:
        await client.aclose()


def assert_shaped_like(got: dict[str, Any], documented: dict[str, Any]) -> None:
    missing = set(documented) - set(got)
    assert not missing, f"fields the reference has and the mock lacks: {missing}"
    for name, value in documented.items():
        if isinstance(value, dict) and name != "metadata":
            assert set(got[name]) == set(value), name


async def test_the_mock_answers_in_the_documented_shapes(server: MockServer) -> None:
    async with aiohttp.ClientSession() as http:
        form = aiohttp.FormData()
        form.add_field("purpose", "batch")
        form.add_field("file", ref.OPENAI_INPUT_LINE + b"\n", filename="in.jsonl")
        async with http.post(server.url + "/files", data=form) as resp:
            file = await resp.json()
        assert_shaped_like(file, {k: v for k, v in ref.OPENAI_FILE.items() if k != "expires_at"})
        body = {
            "input_file_id": file["id"],
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
            "metadata": {KEY_FIELD: "abc"},
        }
        async with http.post(server.url + "/batches", json=body) as resp:
            batch = await resp.json()
        assert_shaped_like(batch, ref.OPENAI_BATCH)
        async with http.get(server.url + f"/batches/{batch['id']}") as resp:
            batch = await resp.json()
        assert batch["status"] == "completed"
        assert batch["metadata"] == {KEY_FIELD: "abc"}
        async with http.get(server.url + f"/files/{batch['output_file_id']}/content") as resp:
            output = msgspec.json.decode((await resp.read()).splitlines()[0])
        documented = msgspec.json.decode(ref.OPENAI_OUTPUT_LINE)
        assert set(output) == set(documented)
        assert set(output["response"]) == set(documented["response"])
        params = msgspec.json.decode(ref.OPENAI_INPUT_LINE)["body"]
        create = {"requests": [{"custom_id": "my-first-request", "params": params}]}
        async with http.post(server.url + "/messages/batches", json=create) as resp:
            message_batch = await resp.json()
        assert_shaped_like(message_batch, ref.ANTHROPIC_BATCH)
        async with http.get(server.url + f"/messages/batches/{message_batch['id']}") as resp:
            assert (await resp.json())["processing_status"] == "ended"
        url = server.url + f"/messages/batches/{message_batch['id']}/results"
        async with http.get(url) as resp:
            result = msgspec.json.decode(await resp.read())
        documented = msgspec.json.decode(ref.ANTHROPIC_SUCCEEDED_LINE)
        assert set(result) == set(documented)
        assert set(result["result"]["message"]) == set(documented["result"]["message"])
