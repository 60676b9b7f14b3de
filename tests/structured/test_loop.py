"""The tool loop over real HTTP on all four backends: parallel calls, a raising tool,
bad arguments, and the step limit."""

from __future__ import annotations

import asyncio
import json

import pytest

from llmfast.structured.loop import ToolLoopLimitError, run_tools
from llmfast.structured.tools import tool
from llmfast.testing import MockServer, Reply
from tests.structured.clients import PROVIDERS, client_for


def sent_text(server: MockServer, n: int) -> str:
    return json.dumps(server.requests[n].json)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_parallel_tool_calls_run_concurrently_and_their_results_go_back(
    server: MockServer, provider: str
) -> None:
    both_running = asyncio.Barrier(2) if hasattr(asyncio, "Barrier") else None
    arrived: list[str] = []

    @tool
    async def get_weather(city: str) -> dict[str, object]:
        """The weather in a city."""
        arrived.append(city)
        if both_running is not None:
            await asyncio.wait_for(both_running.wait(), 5)  # both calls run at once
        return {"city": city, "sky": "clear"}

    @tool
    def get_time(zone: str) -> str:
        return f"12:00 {zone}"

    server.enqueue(
        Reply.tool_calls(
            [
                {"name": "get_weather", "arguments": {"city": "Oslo"}},
                {"name": "get_weather", "arguments": {"city": "Rome"}},
                {"name": "get_time", "arguments": {"zone": "CET"}},
            ]
        ),
        Reply.text("Clear in both; it is noon."),
    )
    async with client_for(server, provider) as client:
        run = await run_tools(client, "weather and time?", [get_weather, get_time])
    assert run.text == "Clear in both; it is noon."
    assert run.steps == 2
    assert sorted(arrived) == ["Oslo", "Rome"]
    assert [c.function.name for c in run.tool_calls] == ["get_weather", "get_weather", "get_time"]
    second = sent_text(server, 1)
    assert "12:00 CET" in second
    assert "sky" in second
    assert "clear" in second
    assert run.usage is not None
    assert run.usage.total_tokens > 0
    roles = [type(m).__name__ for m in run.messages]
    assert roles == [
        "UserMessage",
        "AssistantMessage",
        "ToolMessage",
        "ToolMessage",
        "ToolMessage",
        "AssistantMessage",
    ]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_raising_tool_and_bad_arguments_are_reported_to_the_model(
    server: MockServer, provider: str
) -> None:
    @tool
    def divide(a: int, b: int) -> float:
        return a / b

    server.enqueue(
        Reply.tool_calls(
            [
                {"name": "divide", "arguments": {"a": 1, "b": 0}},
                {"name": "divide", "arguments": {"a": "one", "b": 2}},
                {"name": "missing", "arguments": {}},
            ]
        ),
        Reply.text("Sorry."),
    )
    async with client_for(server, provider) as client:
        run = await run_tools(client, "1/0?", [divide])
    second = sent_text(server, 1)
    assert "divide raised ZeroDivisionError" in second
    assert "invalid arguments for divide" in second
    assert "$.a" in second
    assert "no tool named 'missing'" in second
    assert run.text == "Sorry."


async def test_tool_errors_raise_when_asked(server: MockServer) -> None:
    @tool
    def boom() -> None:
        raise KeyError("nope")

    server.enqueue(Reply.tool_calls([{"name": "boom", "arguments": {}}]))
    async with client_for(server, "openai") as client:
        with pytest.raises(KeyError):
            await run_tools(client, "x", [boom], tool_errors="raise")


async def test_the_step_limit_is_a_typed_error_with_the_transcript(server: MockServer) -> None:
    @tool
    def ping() -> str:
        return "pong"

    server.enqueue(*[Reply.tool_calls([{"name": "ping", "arguments": {}}])] * 3)
    async with client_for(server, "openai") as client:
        with pytest.raises(ToolLoopLimitError) as info:
            await run_tools(client, "x", [ping], max_steps=3)
    assert server.request_count == 3
    assert len(info.value.messages) == 1 + 3 * 2
    assert info.value.usage is not None


async def test_plain_functions_are_made_tools(server: MockServer) -> None:
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    server.enqueue(
        Reply.tool_calls([{"name": "add", "arguments": {"a": 2, "b": 3}}]), Reply.text("5")
    )
    async with client_for(server, "openai") as client:
        run = await run_tools(client, "2+3?", [add])
    assert run.text == "5"
    assert server.requests[0].json["tools"][0]["function"]["description"] == "Add two numbers."
    assert server.requests[1].json["messages"][-1] == {
        "role": "tool",
        "content": "5",
        "tool_call_id": run.tool_calls[0].id,
    }
