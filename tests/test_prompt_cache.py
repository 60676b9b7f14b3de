"""Prompt caching: typed ``cache=`` marks on the wire, the automatic breakpoints, the
request keys, and the cache figures the test server echoes (real HTTP to MockServer)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llmfast
from llmfast import Client
from llmfast.backends._prompt_cache import (
    MAX_BREAKPOINTS,
    count_marks,
    min_cacheable_tokens,
    place_breakpoints,
)
from llmfast.backends.anthropic import AnthropicBackend
from llmfast.backends.openai import OpenAIBackend, encode_request
from llmfast.layers.keys import backend_identity, request_key
from llmfast.testing import MockServer
from llmfast.transport import Request
from llmfast.types import (
    AssistantMessage,
    ChatRequest,
    FunctionDefinition,
    SystemMessage,
    TextPart,
    Tool,
    ToolCall,
    ToolMessage,
    UserMessage,
)

EPHEMERAL = {"type": "ephemeral"}
LONG = "word " * 1100  # past the 1024-token minimum, in the server's word counts


def _client(server: MockServer, **options: Any) -> Client:
    backend = AnthropicBackend(
        server.url_for("anthropic"), api_key="k", model="claude-sonnet-4-5", **options
    )
    return Client(backend, layers=[])


def _usage(reply: llmfast.ChatCompletion) -> tuple[int, int]:
    """(cache reads, cache writes) of a reply."""
    assert reply.usage is not None
    details = reply.usage.prompt_tokens_details or {}
    return details.get("cached_tokens", 0), details.get("cache_creation_tokens", 0)


# -- typed marks on the wire -------------------------------------------------------------


async def test_typed_marks_become_cache_control_blocks(server: MockServer) -> None:
    tool = Tool(FunctionDefinition("lookup", parameters={"type": "object"}), cache=True)
    call = ToolCall("t1", llmfast.FunctionCall("lookup", "{}"))
    messages = [
        SystemMessage("rules", cache="1h"),
        UserMessage([TextPart("a document", cache=True), TextPart("a question")]),
        AssistantMessage(tool_calls=[call]),
        ToolMessage("result", tool_call_id="t1", cache=True),
        UserMessage("and now?", cache={"type": "ephemeral", "ttl": "5m"}),
    ]
    async with _client(server) as client:
        await client.chat(messages, tools=[tool])
    wire = server.requests[-1].json
    assert wire["system"] == [
        {"type": "text", "text": "rules", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]
    assert wire["tools"][0]["cache_control"] == EPHEMERAL
    assert wire["messages"][0]["content"][0] == {
        "type": "text",
        "text": "a document",
        "cache_control": EPHEMERAL,
    }
    assert "cache_control" not in wire["messages"][0]["content"][1]
    tool_turn = wire["messages"][2]["content"]  # the tool result and the new question merged
    assert tool_turn[0]["type"] == "tool_result"
    assert tool_turn[0]["cache_control"] == EPHEMERAL
    assert tool_turn[1]["cache_control"] == {"type": "ephemeral", "ttl": "5m"}
    assert count_marks(wire) == 5


async def test_plain_dict_marks_are_passed_through(server: MockServer) -> None:
    messages: list[Any] = [
        {
            "role": "system",
            "content": [{"type": "text", "text": "rules"}],
            "cache_control": EPHEMERAL,
        },
        {
            "role": "user",
            "content": [{"type": "text", "text": "doc", "cache_control": EPHEMERAL}],
        },
    ]
    tools = [{"type": "function", "function": {"name": "f"}, "cache_control": EPHEMERAL}]
    async with _client(server) as client:
        await client.chat(messages, tools=tools)
    wire = server.requests[-1].json
    assert wire["system"] == [{"type": "text", "text": "rules", "cache_control": EPHEMERAL}]
    assert wire["messages"][0]["content"] == [
        {"type": "text", "text": "doc", "cache_control": EPHEMERAL}
    ]
    assert wire["tools"][0]["cache_control"] == EPHEMERAL


async def test_without_marks_the_wire_is_unchanged(server: MockServer) -> None:
    async with _client(server) as client:
        await client.chat([SystemMessage("a"), SystemMessage("b"), UserMessage("hi")])
    wire = server.requests[-1].json
    assert wire["system"] == "a\n\nb"
    assert wire["messages"] == [{"role": "user", "content": "hi"}]


def test_the_prompt_caching_guide_request_is_built_from_typed_messages() -> None:
    # Recorded from Anthropic's prompt-caching guide (docs.claude.com/en/docs/
    # build-with-claude/prompt-caching, "How to implement prompt caching"): the system
    # prompt's second block, the book, is marked.
    recorded: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": [
            {
                "type": "text",
                "text": "You are an AI assistant tasked with analyzing literary works. "
                "Your goal is to provide insightful commentary on themes, characters, "
                "and writing style.\n",
            },
            {
                "type": "text",
                "text": "<the entire contents of 'Pride and Prejudice'>",
                "cache_control": {"type": "ephemeral"},
            },
        ],
        "messages": [
            {"role": "user", "content": "Analyze the major themes in 'Pride and Prejudice'."}
        ],
    }
    system = recorded["system"]
    typed = ChatRequest(
        model="claude-sonnet-4-5",
        max_tokens=1024,
        messages=[
            SystemMessage([TextPart(system[0]["text"]), TextPart(system[1]["text"], cache=True)]),
            UserMessage(recorded["messages"][0]["content"]),
        ],
    )
    assert AnthropicBackend(api_key="k").wire_body(typed) == recorded


# -- other backends ----------------------------------------------------------------------


async def test_openai_drops_typed_marks_and_sends_prompt_cache_key(server: MockServer) -> None:
    backend = OpenAIBackend(server.url, api_key="k", model="gpt-4o-mini")
    async with Client(backend, layers=[]) as client:
        await client.chat(
            [SystemMessage("rules", cache=True), UserMessage([TextPart("doc", cache="1h")])],
            tools=[Tool(FunctionDefinition("f"), cache=True)],
            prompt_cache_key="tenant-7",
        )
        await client.chat(
            [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "x", "cache_control": EPHEMERAL}],
                }
            ]
        )
    typed, plain = server.requests[-2].json, server.requests[-1].json
    assert typed["prompt_cache_key"] == "tenant-7"
    assert typed["messages"] == [
        {"role": "system", "content": "rules"},
        {"role": "user", "content": [{"type": "text", "text": "doc"}]},
    ]
    assert typed["tools"][0]["function"] == {"name": "f"}
    assert "cache_control" not in typed["tools"][0]
    assert plain["messages"][0]["content"][0]["cache_control"] == EPHEMERAL  # as given


async def test_gemini_ignores_marks(server: MockServer) -> None:
    backend = llmfast.GeminiBackend(server.url_for("gemini"), api_key="k", model="gemini-x")
    async with Client(backend, layers=[]) as client:
        await client.chat([UserMessage([TextPart("hi", cache=True)])], prompt_cache_key="k")
    assert server.requests[-1].json["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]


# -- keys --------------------------------------------------------------------------------


def test_marks_change_the_wire_but_not_the_key() -> None:
    plain = ChatRequest(model="m", messages=[SystemMessage(LONG), UserMessage([TextPart("q")])])
    marked = ChatRequest(
        model="m",
        messages=[
            SystemMessage(LONG, cache=True),
            UserMessage([TextPart("q", cache="1h")], cache=True),
        ],
        prompt_cache_key="p",
    )
    manual, auto = AnthropicBackend(api_key="k"), AnthropicBackend(api_key="k", prompt_cache="auto")
    assert manual.wire_body(plain) != manual.wire_body(marked)
    assert manual.wire_body(plain) != auto.wire_body(plain)
    assert b"cache_control" not in encode_request(marked, False)  # OpenAI: dropped
    identity = backend_identity(manual)
    assert identity == backend_identity(auto)  # auto mode lives in the backend, not the key
    keys = {request_key(Request(body), identity) for body in (plain, marked)}
    assert len(keys) == 1
    assert request_key(Request(plain), identity) == request_key(Request(plain), identity)


marks = st.one_of(st.none(), st.just(True), st.sampled_from(["5m", "1h"]), st.just(EPHEMERAL))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=8), marks, marks), min_size=1, max_size=5))
def test_keys_ignore_marks_typed_or_plain(turns: list[tuple[str, Any, Any]]) -> None:
    def build(with_marks: bool, typed: bool) -> ChatRequest:
        messages: list[Any] = []
        for text, part_mark, message_mark in turns:
            part = {"type": "text", "text": text}
            if typed:
                messages.append(
                    UserMessage(
                        [TextPart(text, cache=part_mark if with_marks else None)],
                        cache=message_mark if with_marks else None,
                    )
                )
                continue
            if with_marks and part_mark is not None:
                part["cache_control"] = part_mark
            message: dict[str, Any] = {"role": "user", "content": [part]}
            if with_marks and message_mark is not None:
                message["cache_control"] = message_mark
            messages.append(message)
        return ChatRequest(model="m", messages=messages)

    keys = {request_key(Request(build(m, t))) for m in (False, True) for t in (False, True)}
    assert len(keys) == 1


# -- automatic placement -----------------------------------------------------------------

texts = st.text(alphabet="ab ", min_size=0, max_size=40)
blocks = st.fixed_dictionaries(
    {"type": st.just("text"), "text": texts},
    optional={"cache_control": st.just(EPHEMERAL)},
)
contents = st.one_of(texts, st.lists(blocks, min_size=1, max_size=3))
messages = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]), "content": contents}),
    max_size=6,
)
tools = st.lists(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["a", "b"]), "input_schema": st.just({"type": "object"})},
        optional={"cache_control": st.just(EPHEMERAL)},
    ),
    max_size=3,
)
bodies = st.fixed_dictionaries(
    {"model": st.just("claude-x"), "messages": messages},
    optional={"system": contents, "tools": tools},
)


def _positions(wire: dict[str, Any]) -> list[tuple[int, int]]:
    """Where the marks are, as (section, index) in prefix order."""
    out = [(0, i) for i, tool in enumerate(wire.get("tools") or ()) if "cache_control" in tool]
    system = wire.get("system")
    if isinstance(system, list):
        out += [(1, i) for i, block in enumerate(system) if "cache_control" in block]
    for i, message in enumerate(wire["messages"]):
        content = message["content"]
        if isinstance(content, list) and any("cache_control" in b for b in content):
            out.append((2, i))
    return out


@settings(max_examples=200, deadline=None)
@given(bodies, st.integers(min_value=0, max_value=40))
def test_breakpoint_placement_properties(wire: dict[str, Any], min_tokens: int) -> None:
    given_wire = copy.deepcopy(wire)
    before = count_marks(wire)
    placed = place_breakpoints(copy.deepcopy(wire), min_tokens=min_tokens)
    after = count_marks(placed)
    assert after <= max(MAX_BREAKPOINTS, before)  # never past the limit (unless the user was)
    assert after >= before  # the user's marks are kept
    if before >= MAX_BREAKPOINTS:
        assert placed == given_wire
    again = place_breakpoints(copy.deepcopy(placed), min_tokens=min_tokens)
    assert again == placed  # idempotent
    assert wire == given_wire  # the input is not changed (it may be the caller's)
    new = sorted(set(_positions(placed)) - set(_positions(wire)))
    assert len(new) <= 3  # tools, system, history: one each at most
    assert [section for section, _ in new] == sorted({section for section, _ in new})


@settings(max_examples=100, deadline=None)
@given(bodies, st.lists(st.tuples(texts, texts), min_size=1, max_size=3))
def test_the_stable_prefix_keeps_its_breakpoints_as_the_conversation_grows(
    wire: dict[str, Any], turns: list[tuple[str, str]]
) -> None:
    """Monotone: appending turns moves the conversation's breakpoint forward, never
    back, and the tools' and system's breakpoints stay where they were."""
    placed = place_breakpoints(copy.deepcopy(wire))
    longer = copy.deepcopy(wire)
    for answer, question in turns:
        longer["messages"] += [
            {"role": "assistant", "content": answer + "x"},
            {"role": "user", "content": question + "y"},
        ]
    grown = place_breakpoints(longer)
    if count_marks(wire) == 0:
        stable = [pos for pos in _positions(placed) if pos[0] < 2]
        assert stable == [pos for pos in _positions(grown) if pos[0] < 2]
        history = [i for section, i in _positions(grown) if section == 2]
        assert history == [len(longer["messages"]) - 2]
        assert all(i <= history[0] for section, i in _positions(placed) if section == 2)


def test_placement_respects_the_minimum_and_the_free_slots() -> None:
    wire: dict[str, Any] = {
        "model": "m",
        "system": "s" * 400,  # 100 estimated tokens
        "messages": [
            {"role": "user", "content": "u" * 400},
            {"role": "assistant", "content": "a" * 400},
            {"role": "user", "content": "new question"},
        ],
    }
    assert _positions(place_breakpoints(copy.deepcopy(wire), min_tokens=101)) == [(2, 1)]
    assert _positions(place_breakpoints(copy.deepcopy(wire), min_tokens=301)) == []
    marked = copy.deepcopy(wire)
    marked["messages"][2]["content"] = [
        {"type": "text", "text": "q", "cache_control": EPHEMERAL} for _ in range(3)
    ]
    # three marks of the user's: one slot left, for the longest prefix
    assert _positions(place_breakpoints(marked)) == [(2, 1), (2, 2)]


def test_minimum_cacheable_lengths_per_model() -> None:
    assert min_cacheable_tokens("claude-opus-4-5-20251101") == 4096
    assert min_cacheable_tokens("claude-haiku-4-5") == 4096
    assert min_cacheable_tokens("claude-3-5-haiku-latest") == 2048
    assert min_cacheable_tokens("claude-sonnet-4-5") == 1024
    assert min_cacheable_tokens("some-other-model") == 1024


# -- the test server's cache figures -----------------------------------------------------


async def test_a_marked_prefix_is_written_then_read(server: MockServer) -> None:
    prompt = [SystemMessage(LONG, cache=True), UserMessage("first")]
    async with _client(server) as client:
        first = await client.chat(prompt)
        second = await client.chat([prompt[0], UserMessage("second")])
        other = await client.chat([SystemMessage(LONG + "more", cache=True), UserMessage("x")])
    assert _usage(first) == (0, 1100)
    assert _usage(second) == (1100, 0)
    assert _usage(other) == (0, 1101)  # another prefix: written anew
    assert first.usage is not None
    assert second.usage is not None
    assert first.usage.prompt_tokens == second.usage.prompt_tokens == 1101


async def test_a_short_prefix_is_not_cached(server: MockServer) -> None:
    async with _client(server) as client:
        for _ in range(2):
            reply = await client.chat([SystemMessage("short", cache=True), UserMessage("hi")])
            assert _usage(reply) == (0, 0)


async def test_one_hour_writes_are_reported_apart(server: MockServer) -> None:
    async with _client(server) as client:
        await client.chat([SystemMessage(LONG, cache="1h"), UserMessage("q")])
    raw = server.requests[-1].json
    assert raw["system"][0]["cache_control"]["ttl"] == "1h"


async def test_auto_mode_reads_the_growing_conversation(server: MockServer) -> None:
    history: list[Any] = [SystemMessage(LONG), UserMessage("q1")]
    seen: list[tuple[int, int]] = []
    async with _client(server, prompt_cache="auto") as client:
        for turn in range(3):
            async with client.stream(history) as stream:
                async for _ in stream:
                    pass
            seen.append(_usage(stream.completion))
            history += [AssistantMessage(stream.completion.text), UserMessage(f"q{turn + 2}")]
    # turn 1 writes the system prompt; then each turn reads all but the newest turns
    assert seen[0] == (0, 1100)
    assert seen[1][0] == 1100
    assert seen[1][1] > 0
    assert seen[2][0] == sum(seen[1])
    assert seen[2][1] > 0
    assert count_marks(server.requests[-1].json) == 2  # system and history


async def test_client_prompt_cache_option(server: MockServer) -> None:
    async with Client(
        provider="anthropic",
        base_url=server.url_for("anthropic"),
        api_key="k",
        model="claude-sonnet-4-5",
        prompt_cache="auto",
    ) as client:
        assert isinstance(client.backend, AnthropicBackend)
        assert client.backend.prompt_cache == "auto"
        await client.chat([SystemMessage(LONG), UserMessage("q")])
    assert server.requests[-1].json["system"][0]["cache_control"] == EPHEMERAL
    with pytest.raises(llmfast.ConfigurationError, match="prompt_cache"):
        Client(AnthropicBackend(api_key="k"), prompt_cache="auto")
    with pytest.raises(llmfast.ConfigurationError, match="prompt_cache"):
        Client(provider="anthropic", api_key="k", prompt_cache="always")  # type: ignore[arg-type]
