"""The gateway's stream fast path: an OpenAI-format deployment's event payloads are
forwarded as they came (``raw_events``), with the ``openai`` SDK as the client."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import openai
import pytest

from llmfast.gateway import Gateway, parse_config
from llmfast.gateway.fleet import forwards_events
from llmfast.testing import MockServer, Reply
from tests.conformance import conformance_dir

from .conftest import TEAM_A_KEY, MakeGateway, standard_config


def sdk(gateway: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=TEAM_A_KEY, max_retries=0)


def _event(choices: list[Any], **extra: Any) -> bytes:
    head = {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 5, "model": "up"}
    return b"data: " + json.dumps({**head, "choices": choices, **extra}).encode() + b"\n\n"


def _text(text: str) -> bytes:
    return _event([{"index": 0, "delta": {"content": text}, "finish_reason": None}])


_ROLE = _event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])


async def _stream(gateway: Gateway, **options: Any) -> list[Any]:
    async with sdk(gateway) as client:
        stream = await client.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "hi"}], stream=True, **options
        )
        return [chunk async for chunk in stream]


async def _metrics(gateway: Gateway) -> set[str]:
    async with aiohttp.ClientSession() as session, session.get(gateway.url + "/metrics") as r:
        return set((await r.text()).splitlines())


async def test_the_condition(upstream: MockServer) -> None:
    def model(extra: str, provider: str = "openai") -> Any:
        text = standard_config(upstream, model_extra=extra)
        text = text.replace('provider = "openai"', f'provider = "{provider}"', 1)
        return parse_config(text, source="t.toml").models["fast"]

    assert forwards_events(model(""))
    assert not forwards_events(model("cache = true"))
    assert not forwards_events(model("coalesce = true"))
    assert not forwards_events(model("", provider="anthropic"))


async def test_exact_text_usage_and_token_metrics(
    upstream: MockServer, make_gateway: MakeGateway
) -> None:
    async with make_gateway(standard_config(upstream)) as gateway:
        assert gateway.fleet.forwards_events("fast")
        upstream.enqueue(Reply.text('one "two"\nthree – four', chunk_size=1))
        chunks = await _stream(gateway, stream_options={"include_usage": True})
        upstream.enqueue(Reply.text("five six", chunk_size=1))
        unasked = await _stream(gateway)
        lines = await _metrics(gateway)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == 'one "two"\nthree – four'
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens >= 4
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert "".join(c.choices[0].delta.content or "" for c in unasked if c.choices) == "five six"
    assert all(c.usage is None for c in unasked)
    assert all(c.choices for c in unasked)
    tokens = 'llmfast_gateway_tokens_total{direction="output",model="fast",tenant="team-a"}'
    counted = {line for line in lines if line.startswith(tokens)}
    expected = chunks[-1].usage.completion_tokens + 2  # both streams' (the second: 2)
    assert counted == {f"{tokens} {float(expected)}"}


async def test_the_upstreams_own_fields_pass_through(
    upstream: MockServer, make_gateway: MakeGateway
) -> None:
    finish = _event([{"index": 0, "delta": {}, "finish_reason": "stop"}], service_tier="flex")
    body = _ROLE + _text("a") + _text("b") + finish + b"data: [DONE]\n\n"
    upstream.enqueue(Reply.raw(body, write_size=40))
    async with make_gateway(standard_config(upstream)) as gateway:
        chunks = await _stream(gateway)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "ab"
    assert chunks[-1].service_tier == "flex"  # the typed path has no field for it


async def test_an_error_event_mid_stream_reaches_the_client(
    upstream: MockServer, make_gateway: MakeGateway
) -> None:
    error = b'data: {"error":{"message":"upstream overloaded","type":"server_error"}}\n\n'
    upstream.enqueue(Reply.raw(_ROLE + _text("a") + _text("b") + error, write_size=30))
    async with make_gateway(standard_config(upstream)) as gateway:
        seen: list[str] = []
        async with sdk(gateway) as client:
            stream = await client.chat.completions.create(
                model="fast", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            with pytest.raises(openai.APIError, match="upstream"):
                async for chunk in stream:
                    seen.append(chunk.choices[0].delta.content or "")  # noqa: PERF401 (kept up to the error)
        lines = await _metrics(gateway)
    assert "".join(seen) == "ab"
    assert any(line.startswith("llmfast_gateway_errors_total{") for line in lines)


async def test_an_upstream_cut_mid_stream_reaches_the_client_as_an_error(
    upstream: MockServer, make_gateway: MakeGateway
) -> None:
    upstream.enqueue(Reply.raw(_ROLE + _text("a") + _text("b"), write_size=25))  # no end
    async with make_gateway(standard_config(upstream)) as gateway:
        seen: list[str] = []
        async with sdk(gateway) as client:
            stream = await client.chat.completions.create(
                model="fast", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            with pytest.raises(openai.APIError, match="upstream"):
                async for chunk in stream:
                    seen.append(chunk.choices[0].delta.content or "")  # noqa: PERF401 (kept up to the error)
    assert "".join(seen) == "ab"


async def test_cache_and_coalescing_models_still_serve_typed_chunks(
    upstream: MockServer, make_gateway: MakeGateway
) -> None:
    config = standard_config(upstream, model_extra="cache = true\ncoalesce = true")
    async with make_gateway(config) as gateway:
        assert not gateway.fleet.forwards_events("fast")
        first = await _stream(gateway, temperature=0)
        second = await _stream(gateway, temperature=0)  # a cache hit
        lines = await _metrics(gateway)
    assert len(upstream.requests) == 1
    text = [
        "".join(c.choices[0].delta.content or "" for c in s if c.choices) for s in (first, second)
    ]
    assert text == ["hi", "hi"]
    hit = 'llmfast_gateway_layer_events_total{event="cache_hit",model="fast",tenant="team-a"} 1.0'
    assert hit in lines


async def test_a_stream_unfinished_at_its_end_marker_sends_its_events_then_the_error(
    upstream: MockServer, make_gateway: MakeGateway
) -> None:
    """The read holding ``[DONE]`` goes out with the stream's end; when the end turns out
    to be a truncation (no finish reason), its events still come first, then the error
    event, and no ``[DONE]``."""
    upstream.enqueue(Reply.raw(_ROLE + _text("a") + _text("b") + b"data: [DONE]\n\n"))
    async with make_gateway(standard_config(upstream)) as gateway:
        body = {"model": "fast", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        headers = {"Authorization": f"Bearer {TEAM_A_KEY}"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                gateway.url + "/v1/chat/completions", json=body, headers=headers
            ) as response,
        ):
            events = (await response.read()).split(b"\n\n")
    payloads = [json.loads(e.removeprefix(b"data: ")) for e in events if e]
    texts = [p["choices"][0]["delta"].get("content") for p in payloads if p.get("choices")]
    assert texts == ["", "a", "b"]
    assert "error" in payloads[-1]
    assert b"data: [DONE]" not in events


@pytest.mark.skipif(conformance_dir() is None, reason="../shared/conformance absent")
async def test_a_real_openai_stream_reaches_the_client_as_it_came(
    upstream: MockServer, make_gateway: MakeGateway
) -> None:
    """OpenAI's own stream (padded events, ``"refusal":null`` in the role) replayed by
    the upstream: the client gets the exact text and usage, and each event's own fields
    (``obfuscation``) as OpenAI sent them, so the events were forwarded, not re-encoded."""
    folder = conformance_dir()
    assert folder is not None
    name = folder / "streams" / "openai_chat_usage_last_chunk"
    body = name.with_suffix(".txt").read_bytes()
    expected = json.loads(name.with_suffix(".expected.json").read_text("utf-8"))
    upstream.enqueue(Reply.raw(body, write_size=997))
    async with make_gateway(standard_config(upstream)) as gateway:
        chunks = await _stream(gateway, stream_options={"include_usage": True})
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected["text"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.model_dump(exclude_none=True) == expected["usage"]
    sent = [json.loads(line[6:]) for line in body.split(b"\n\n") if line[6:7] == b"{"]
    assert [getattr(c, "obfuscation", None) for c in chunks] == [e["obfuscation"] for e in sent]
