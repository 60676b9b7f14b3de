"""Responses streams that resume: a dropped connection re-attaches from the last
sequence number seen, with no delta duplicated or lost; when it cannot, the caller gets
``StreamInterruptedError`` with the partial. Background responses are polled without
streaming, and cancelled on the server when the caller leaves."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

import llmfast
from llmfast import Client
from llmfast.backends.openai_responses import OpenAIResponsesBackend
from llmfast.errors import ReadError
from llmfast.testing import MockServer, Reply
from llmfast.testing.responses_store import store_of

BACKGROUND = {"background": True}
WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
]


def _client(server: MockServer, **kwargs: Any) -> Client:
    backend = OpenAIResponsesBackend(server.url, api_key="k", model="m", **kwargs)
    return Client(backend)


async def _texts(client: Client, prompt: str, **kwargs: Any) -> list[str]:
    async with client.stream(prompt, **kwargs) as stream:
        return [chunk.text async for chunk in stream]


async def test_a_stream_dropped_at_any_event_resumes_exactly() -> None:
    rng = random.Random(16)
    async with MockServer() as server, _client(server) as client:
        for _ in range(40):
            server.reset()
            prompt = " ".join(rng.choices(WORDS, k=rng.randint(1, 12)))
            whole = await _texts(client, prompt, extra_body=BACKGROUND)
            events = len(whole) + 6  # created, in_progress, item and part added, ...
            cut = rng.randint(1, events)
            server.enqueue(Reply.reset(after_chunks=cut))
            if rng.random() < 0.5:  # the resumed stream drops too
                server.enqueue(Reply.reset(after_chunks=rng.randint(1, 4)))
            before = server.request_count
            resumed = await _texts(client, prompt, extra_body=BACKGROUND)
            assert resumed == whole, cut  # the same deltas: none repeated, none lost
            assert "".join(resumed) == prompt
            retrievals = [r for r in server.requests[before:] if r.method == "GET"]
            if retrievals:  # the drop came after the response id: re-attached
                assert "stream=true" in retrievals[0].query
                assert "starting_after=" in retrievals[0].query


async def test_a_dropped_stream_that_cannot_resume_is_interrupted_with_its_partial() -> None:
    async with MockServer() as server, _client(server) as client:
        server.enqueue(Reply.reset(after_chunks=7))  # not background: the server refuses
        with pytest.raises(llmfast.StreamInterruptedError) as caught:
            await _texts(client, "one two three four five six")
    error = caught.value
    assert isinstance(error, ReadError)  # still the drop's own type
    assert error.partial is not None
    assert error.partial_text
    assert "one two three four five six".startswith(error.partial_text)
    [get] = [r for r in server.requests if r.method == "GET"]
    assert "stream=true" in get.query


async def test_resume_off_means_a_drop_interrupts_without_retrieving() -> None:
    async with MockServer() as server, _client(server, resume=False) as client:
        server.enqueue(Reply.reset(after_chunks=7))
        with pytest.raises(llmfast.StreamInterruptedError):
            await _texts(client, "one two three four five six", extra_body=BACKGROUND)
    assert [r.method for r in server.requests] == ["POST"]


async def test_a_stream_ended_early_resumes_too() -> None:
    async with MockServer() as server, _client(server) as client:
        server.enqueue(Reply.truncated(after_chunks=6))
        texts = await _texts(client, "one two three four five", extra_body=BACKGROUND)
    assert "".join(texts) == "one two three four five"


async def test_a_background_response_is_polled_to_completion() -> None:
    async with MockServer() as server, _client(server, poll_interval=0) as client:
        result = await client.chat("polled answer", extra_body=BACKGROUND)
    assert result.text == "polled answer"
    assert result.finish_reason == "stop"
    assert [r.method for r in server.requests] == ["POST", "GET", "GET"]  # queued, in_progress


async def test_leaving_a_background_stream_cancels_the_response() -> None:
    async with MockServer() as server, _client(server) as client:
        server.enqueue(Reply.stall(after_chunks=6))
        async with client.stream("one two three four", extra_body=BACKGROUND) as stream:
            async for chunk in stream:
                assert chunk.text == "one "
                break
        await server.wait_for_requests(2)
    cancel = server.requests[1]
    assert (cancel.method, cancel.path) == ("POST", "/v1/responses/resp_mock1/cancel")
    stored = store_of(server).get("resp_mock1")
    assert stored is not None
    assert stored.cancelled


async def test_cancelling_a_poll_cancels_the_response() -> None:
    async with MockServer() as server:
        store_of(server).polls = 10**9  # never done
        client = _client(server, poll_interval=0)
        call = asyncio.ensure_future(client.chat("slow", extra_body=BACKGROUND))
        await server.wait_for_requests(3)  # the POST and two polls: the call is polling
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await client.aclose()  # waits for the cancellation being sent
        paths = [r.path for r in server.requests]
    assert paths[-1] == "/v1/responses/resp_mock1/cancel"
    stored = store_of(server).get("resp_mock1")
    assert stored is not None
    assert stored.cancelled


async def test_a_finished_stream_sends_no_cancel() -> None:
    async with MockServer() as server, _client(server) as client:
        await _texts(client, "done here", extra_body=BACKGROUND)
    assert [r.method for r in server.requests] == ["POST"]


async def test_a_resumed_stream_that_drops_again_resumes_again() -> None:
    prompt = "one two three four five six seven eight nine ten"
    async with MockServer() as server, _client(server) as client:
        whole = await _texts(client, prompt, extra_body=BACKGROUND)
        server.enqueue(
            Reply.reset(after_chunks=5),
            Reply.reset(after_chunks=3),
            Reply.truncated(after_chunks=2),
        )
        resumed = await _texts(client, prompt, extra_body=BACKGROUND)
    assert resumed == whole
    assert [r.method for r in server.requests[1:]] == ["POST", "GET", "GET", "GET"]


async def test_a_stream_that_keeps_dropping_is_interrupted_after_max_resumes() -> None:
    async with MockServer() as server, _client(server, max_resumes=2) as client:
        server.enqueue(*[Reply.reset(after_chunks=5)] + [Reply.truncated(after_chunks=1)] * 3)
        with pytest.raises(llmfast.StreamInterruptedError) as caught:
            await _texts(client, "one two three four five six seven", extra_body=BACKGROUND)
    assert isinstance(caught.value, llmfast.StreamTruncatedError)
    assert caught.value.partial_text.startswith("one ")
    assert [r.method for r in server.requests] == ["POST", "GET", "GET"]
