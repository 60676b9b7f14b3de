"""The facade's behaviour beyond the snippets: errors in both trees, retries and
timeouts as llmfast runs them, layers, headers and bodies on the wire, streams that
release their connection, the sync client. Real HTTP to ``llmfast.testing``."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import llmfast
import llmfast.openai as openai
from llmfast import errors
from llmfast.layers import Cache
from llmfast.layers.retry import Retry, set_testing
from llmfast.openai._config import NOT_GIVEN, split_params
from llmfast.testing import MockServer, Reply

HI = [{"role": "user", "content": "hi there"}]


@pytest.fixture(autouse=True)
def _instant_retries() -> Iterator[None]:
    set_testing(True)
    try:
        yield
    finally:
        set_testing(False)


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with MockServer() as running:
        yield running


@pytest.fixture
async def client(server: MockServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=server.url, api_key="sk-secret-123") as made:
        yield made


async def test_a_status_error_is_in_both_trees(
    server: MockServer, client: openai.AsyncOpenAI
) -> None:
    server.enqueue(*[Reply.error(429, retry_after=0.01, code="rate_limit_exceeded")] * 3)
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="m", messages=HI)
    error = caught.value
    assert isinstance(error, errors.RateLimitError)
    assert isinstance(error, errors.APIStatusError)
    assert isinstance(error, openai.APIStatusError)
    assert error.status_code == error.status == 429
    assert error.response.status_code == 429
    assert error.response.headers["retry-after"] == "0.01"
    assert error.retry_after == pytest.approx(0.01)
    assert error.code == "rate_limit_exceeded"
    assert error.body == error.response.json()["error"]
    assert error.message.startswith("Error code: 429 - ")
    assert error.request is not None
    assert error.request.url.endswith("/chat/completions")
    assert server.request_count == 3  # max_retries=2: three attempts


async def test_a_more_specific_llmfast_error_keeps_its_class(
    server: MockServer, client: openai.AsyncOpenAI
) -> None:
    server.enqueue(*[Reply.error(529)] * 3)
    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model="m", messages=HI)
    assert isinstance(caught.value, errors.OverloadedError)
    assert type(caught.value) is type(await _fails(client, server, Reply.error(529)))


async def _fails(client: openai.AsyncOpenAI, server: MockServer, reply: Reply) -> Exception:
    server.enqueue(*[reply] * 3)
    try:
        await client.chat.completions.create(model="m", messages=HI)
    except Exception as exc:
        return exc
    raise AssertionError("no error")


async def test_connection_and_timeout_errors() -> None:
    async with openai.AsyncOpenAI(
        base_url="http://127.0.0.1:9/v1", api_key="k", max_retries=0
    ) as client:
        with pytest.raises(openai.APIConnectionError) as caught:
            await client.chat.completions.create(model="m", messages=HI)
    assert isinstance(caught.value, errors.ConnectError)
    assert caught.value.__cause__ is not None
    assert not isinstance(caught.value, openai.APITimeoutError)
    async with MockServer(default=Reply.text("late", delay=5)) as server:
        slow = openai.AsyncOpenAI(base_url=server.url, api_key="k", timeout=0.2)
        async with slow:
            with pytest.raises(openai.APITimeoutError) as timed_out:
                await slow.chat.completions.create(model="m", messages=HI)
    assert isinstance(timed_out.value, TimeoutError)
    assert isinstance(timed_out.value, errors.Timeout)
    assert timed_out.value.message == "Request timed out."


async def test_max_retries_and_with_options(server: MockServer) -> None:
    async with openai.AsyncOpenAI(base_url=server.url, api_key="k", max_retries=0) as client:
        server.enqueue(Reply.error(500))
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model="m", messages=HI)
        assert server.request_count == 1
        server.enqueue(*[Reply.error(503)] * 4, Reply.text("fifth"))
        patient = client.with_options(max_retries=4)
        reply = await patient.chat.completions.create(model="m", messages=HI)
        assert reply.choices[0].message.content == "fifth"
        assert server.request_count == 6
        server.enqueue(Reply.error(500))  # the copy's setting stays with the copy
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model="m", messages=HI)
        assert server.request_count == 7
        assert patient.max_retries == 4
        assert client.max_retries is None


async def test_layers_run_underneath(server: MockServer) -> None:
    async with openai.AsyncOpenAI(base_url=server.url, api_key="k", layers=[Cache()]) as client:
        first = await client.chat.completions.create(model="m", messages=HI, temperature=0)
        again = await client.chat.completions.create(model="m", messages=HI, temperature=0)
    assert first.model_dump() == again.model_dump()
    assert server.request_count == 1
    with pytest.raises(errors.ConfigurationError):
        openai.AsyncOpenAI(api_key="k", layers=[Retry()], max_retries=3)


async def test_wrapping_a_client_leaves_it_open(server: MockServer) -> None:
    async with llmfast.Client(base_url=server.url, api_key="k") as core:
        facade = openai.AsyncOpenAI(client=core)
        reply = await facade.chat.completions.create(model="m", messages=HI)
        assert reply.choices[0].message.content == "hi there"
        await facade.close()
        assert not core.closed
        with pytest.raises(errors.ConfigurationError):
            facade.with_options(max_retries=3)  # no facade retry layer to steer
        with pytest.raises(errors.ConfigurationError):
            openai.AsyncOpenAI(client=core, api_key="other")


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(openai.OpenAIError, match="OPENAI_API_KEY"):
        openai.AsyncOpenAI()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-9876")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1/")
    client = openai.AsyncOpenAI()
    assert client.base_url == "http://127.0.0.1:1/v1"
    assert "sk-from-env-9876" not in repr(client)
    with pytest.raises(errors.ConfigurationError):
        openai.AsyncOpenAI(default_query={"api-version": "1"})


class _Timeout:  # what httpx.Timeout(60.0, connect=2.0) looks like
    connect = 2.0
    read = 60.0
    write = 60.0
    pool = 60.0


async def test_a_timeout_object_sets_connect_and_read(server: MockServer) -> None:
    async with openai.AsyncOpenAI(base_url=server.url, api_key="k", timeout=_Timeout()) as client:
        await client.chat.completions.create(model="m", messages=HI)
        timeouts = client.client._pool.timeouts
        assert (timeouts.connect, timeouts.read, timeouts.idle) == (2.0, 60.0, 60.0)
        assert client.timeout is None
        assert client.with_options(timeout=_Timeout()).timeout == 60.0


async def test_what_reaches_the_wire(server: MockServer) -> None:
    async with openai.AsyncOpenAI(
        base_url=server.url,
        api_key="sk-wire",
        organization="org-1",
        project="proj-1",
        default_headers={"X-Default": "d"},
    ) as client:
        await client.chat.completions.create(
            model="m",
            messages=HI,
            temperature=NOT_GIVEN,
            metadata={"k": "v"},
            extra_body={"top_k": 3, "seed": 7},
            extra_headers={"X-Call": "c"},
        )
    sent = server.requests[-1]
    assert sent.headers["authorization"] == "Bearer sk-wire"
    assert sent.headers["openai-organization"] == "org-1"
    assert sent.headers["openai-project"] == "proj-1"
    assert (sent.headers["x-default"], sent.headers["x-call"]) == ("d", "c")
    assert sent.json["metadata"] == {"k": "v"}
    assert (sent.json["top_k"], sent.json["seed"]) == (3, 7)
    assert "temperature" not in sent.json


async def test_stream_usage_is_shown_only_when_asked(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(model="m", messages=HI, stream=True)
    chunks = [chunk async for chunk in stream]
    assert all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)
    asked = await client.chat.completions.create(
        model="m", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    async with asked:
        last = [chunk async for chunk in asked][-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    dumped = chunks[1].model_dump()
    assert list(dumped) == [
        "id", "choices", "created", "model", "object", "service_tier", "system_fingerprint", "usage"
    ]  # fmt: skip
    assert dumped["choices"][0]["delta"]["content"] == chunks[1].choices[0].delta.content
    assert json.loads(chunks[1].to_json()) == chunks[1].to_dict()


async def test_a_stream_left_early_releases_its_connection(
    server: MockServer, client: openai.AsyncOpenAI
) -> None:
    long = Reply.text(" ".join(["word"] * 200))
    server.enqueue(long)
    stream = await client.chat.completions.create(model="m", messages=HI, stream=True)
    async with stream:
        async for _ in stream:
            break
    assert stream.response.status_code == 200
    assert client.client._pool.connections_in_use() == 0


async def test_a_broken_stream_raises_a_facade_error_with_what_arrived(
    server: MockServer, client: openai.AsyncOpenAI
) -> None:
    server.enqueue(Reply.reset(after_chunks=3))
    stream = await client.chat.completions.create(model="m", messages=HI, stream=True)
    received = []
    with pytest.raises(openai.APIConnectionError) as caught:
        async for chunk in stream:
            received.append(chunk)  # noqa: PERF401 - the chunks before the failure
    assert len(received) == 3
    assert isinstance(caught.value, errors.StreamInterruptedError)
    assert isinstance(caught.value, errors.ReadError)
    assert len(caught.value.chunks) == 3
    assert client.client._pool.connections_in_use() == 0


async def test_an_http_error_of_a_stream_is_raised_by_create(
    server: MockServer, client: openai.AsyncOpenAI
) -> None:
    server.enqueue(Reply.error(401))
    with pytest.raises(openai.AuthenticationError):
        await client.chat.completions.create(model="m", messages=HI, stream=True)


class Invoice(msgspec.Struct):
    number: str
    total: float


async def test_parse_with_a_msgspec_type_and_a_plain_format(client: openai.AsyncOpenAI) -> None:
    parsed = await client.chat.completions.parse(model="m", messages=HI, response_format=Invoice)
    invoice = parsed.choices[0].message.parsed
    assert isinstance(invoice, Invoice)
    assert parsed.model_dump()["choices"][0]["message"]["parsed"] == msgspec.to_builtins(invoice)
    plain = await client.chat.completions.parse(
        model="m", messages=HI, response_format={"type": "json_object"}
    )
    assert plain.choices[0].message.parsed is None
    old_path = await client.beta.chat.completions.parse(
        model="m", messages=HI, response_format=Invoice
    )
    assert isinstance(old_path.choices[0].message.parsed, Invoice)


async def test_embeddings_in_base64_round_trip(client: openai.AsyncOpenAI) -> None:
    floats = await client.embeddings.create(model="e", input="same text", dimensions=8)
    packed = await client.embeddings.create(
        model="e", input="same text", dimensions=8, encoding_format="base64"
    )
    vector = floats.data[0].embedding
    encoded = packed.data[0].embedding
    assert isinstance(vector, list)
    assert isinstance(encoded, str)
    decoded = msgspec.json.decode(json.dumps(list(memoryview(_b64decode(encoded)).cast("f"))))
    assert decoded == pytest.approx(vector, rel=1e-6)


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text)


async def test_models_list_errors_are_facade_errors() -> None:
    async with MockServer() as server:
        client = openai.AsyncOpenAI(base_url=server.url + "/nope", api_key="k")
        async with client:
            with pytest.raises(openai.NotFoundError) as caught:
                await client.models.list()
    assert caught.value.request is not None
    assert caught.value.request.method == "GET"


def test_the_sync_client_maps_errors_and_closes_streams() -> None:
    with (
        MockServer.in_thread() as server,
        openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as client,
    ):
        server.enqueue(Reply.error(404))
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(model="m", messages=HI)
        assert isinstance(caught.value, errors.NotFoundError)
        stream = client.chat.completions.create(model="m", messages=HI, stream=True)
        with stream:
            first = next(iter(stream))
        assert first.choices[0].delta.role == "assistant"
        parsed = client.chat.completions.parse(model="m", messages=HI, response_format=Invoice)
        assert isinstance(parsed.choices[0].message.parsed, Invoice)
        with client.chat.completions.stream(model="m", messages=HI) as events:
            kinds = {event.type for event in events}
            final = events.get_final_completion()
        assert {"chunk", "content.delta", "content.done"} <= kinds
        assert final.choices[0].message.content == "hi there"
        assert client.embeddings.create(model="e", input=["a", "b"]).data[1].index == 1
    assert client.is_closed()


_VALUES = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.just(NOT_GIVEN))
_KEYS = st.sampled_from(["temperature", "seed", "n", "metadata", "store", "logit_bias", "top_k"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_KEYS, _VALUES), st.dictionaries(_KEYS, st.integers()))
def test_split_params_loses_and_invents_nothing(
    params: dict[str, Any], extra_body: dict[str, int]
) -> None:
    call = split_params(params, extra_body)
    extra = call.pop("extra_body", {})
    merged = {**call, **extra}
    expected = {k: v for k, v in params.items() if v is not NOT_GIVEN}
    expected.update(extra_body)
    assert merged == expected
    assert not set(call) & set(extra)
    assert not set(extra) & {"temperature", "seed", "n"}


async def test_import_llmfast_does_not_import_the_facade() -> None:
    code = "import sys, llmfast; print('llmfast.openai' in sys.modules)"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert out.strip() == b"False"


async def test_parse_leaves_parsed_empty_on_a_refusal(
    server: MockServer, client: openai.AsyncOpenAI
) -> None:
    body = {
        "id": "chatcmpl-r",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": None, "refusal": "I can't help."},
            }
        ],
    }
    server.enqueue(Reply.raw(json.dumps(body).encode(), content_type="application/json"))
    parsed = await client.chat.completions.parse(model="m", messages=HI, response_format=Invoice)
    message = parsed.choices[0].message
    assert message.refusal == "I can't help."
    assert message.parsed is None
    assert server.requests[-1].json["response_format"]["json_schema"]["strict"] is True
