"""Events: a hook gets what the layers report, as immutable ``Event``s; a hook made with
``only_events`` gets only the events it names, and the others are never made."""

from __future__ import annotations

import msgspec
import pytest

import llmfast
from llmfast.events import Event, emit, only_events
from llmfast.layers import Retry
from llmfast.testing import MockServer, Reply
from llmfast.transport import Request
from llmfast.types import ChatRequest


async def _call_with_one_retry(on_event: llmfast.events.EventHook) -> str:
    async with MockServer() as server:
        server.enqueue(Reply.error(429, retry_after=0), Reply.text("fine"))
        async with llmfast.Client(
            base_url=server.url, model="m", layers=[Retry(max_attempts=2)], on_event=on_event
        ) as client:
            return (await client.chat("hi")).text or ""


async def test_every_event_reaches_a_plain_hook() -> None:
    events: list[Event] = []
    assert await _call_with_one_retry(events.append) == "fine"
    names = [e.name for e in events]
    assert names[:5] == ["attempt", "attempt.failed", "retry", "attempt", "attempt.ok"]


async def test_only_the_named_events_reach_a_filtered_hook() -> None:
    events: list[Event] = []
    hook = only_events({"retry", "attempt.failed"}, events.append)
    assert await _call_with_one_retry(hook) == "fine"
    assert [e.name for e in events] == ["attempt.failed", "retry"]
    assert events[1].data["reason"] == "server"
    assert "retry" in repr(hook)


def test_a_filtered_out_event_is_not_made() -> None:
    made: list[Event] = []
    request = Request(ChatRequest(model="m", messages=[]), on_event=only_events(["x"], made.append))
    emit(request, "attempt", attempt=1)
    assert made == []
    emit(request, "x", 0.5, n=1)
    assert made == [Event("x", request, 0.5, {"n": 1})]
    hook = request.on_event
    assert hook is not None
    hook(Event("y", request))  # called directly, it filters too
    assert len(made) == 1


def test_events_are_immutable() -> None:
    event = Event("x", Request(ChatRequest(model="m", messages=[])))
    assert event.data == {}
    assert event.elapsed is None
    with pytest.raises(AttributeError):
        event.name = "y"  # type: ignore[misc]
    assert msgspec.structs.replace(event, name="y").name == "y"
