"""Request keys: requests that mean the same thing share a key; any change that can
change the output changes it; secrets and transport settings never enter it."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

import llmfast
from llmfast import (
    AssistantMessage,
    ChatRequest,
    EmbeddingRequest,
    FunctionCall,
    FunctionDefinition,
    Request,
    SystemMessage,
    TextPart,
    Tool,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from llmfast.layers.keys import (
    backend_identity,
    canonical_request,
    is_deterministic,
    request_key,
)
from llmfast.layers.retry import Retry

SECRET = "sk-test-SECRET-never-in-a-key"
IDENTITY = "openai http://127.0.0.1:1/v1"

texts = st.text(max_size=12)
names = st.text(alphabet="abcdefgh_", min_size=1, max_size=8)


# A message's meaning: (role, text, name, extra) from which typed and dict forms are built.
@st.composite
def meanings(draw: st.DrawFn) -> dict[str, Any]:
    role = draw(st.sampled_from(["system", "user", "user_parts", "assistant", "tool"]))
    return {
        "role": role,
        "text": draw(texts),
        "name": draw(st.none() | names),
        "calls": draw(st.lists(st.tuples(names, names, texts), max_size=2)),
    }


def typed_message(m: dict[str, Any]) -> Any:
    role = m["role"]
    if role == "system":
        return SystemMessage(m["text"], name=m["name"])
    if role == "user":
        return UserMessage(m["text"], name=m["name"])
    if role == "user_parts":
        return UserMessage([TextPart(m["text"]), TextPart("more")], name=m["name"])
    if role == "assistant":
        calls = [ToolCall(i, FunctionCall(n, a)) for i, n, a in m["calls"]] or None
        return AssistantMessage(content=m["text"] or None, tool_calls=calls, name=m["name"])
    return ToolMessage(m["text"], tool_call_id="call_1")


def dict_message(m: dict[str, Any], rng: random.Random, explicit: bool) -> dict[str, Any]:
    """The same message as a plain dict, keys in random order, defaults given or not."""
    role = m["role"]
    out: dict[str, Any] = {}
    if role in ("system", "user"):
        out = {"role": role, "content": m["text"]}
    elif role == "user_parts":
        parts = [{"type": "text", "text": m["text"]}, {"text": "more", "type": "text"}]
        out = {"role": "user", "content": parts}
    elif role == "assistant":
        out = {"role": "assistant"}
        if m["text"] or explicit:
            out["content"] = m["text"] or None
        if m["calls"]:
            out["tool_calls"] = [
                _shuffled(
                    {"id": i, "function": _call(n, a, explicit)}
                    | ({"type": "function"} if explicit else {}),
                    rng,
                )
                for i, n, a in m["calls"]
            ]
    else:
        out = {"role": "tool", "content": m["text"], "tool_call_id": "call_1"}
    if role != "tool" and (m["name"] is not None or explicit):
        out["name"] = m["name"]
    return _shuffled(out, rng)


def _call(name: str, arguments: str, explicit: bool) -> dict[str, Any]:
    if arguments or explicit:
        return {"name": name, "arguments": arguments}
    return {"name": name}


def _shuffled(d: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    items = list(d.items())
    rng.shuffle(items)
    return dict(items)


TOOL = Tool(FunctionDefinition("get_weather", parameters={"type": "object", "properties": {}}))
TOOL_DICT = {
    "function": {"parameters": {"properties": {}, "type": "object"}, "name": "get_weather"},
    "type": "function",
}


@given(
    messages=st.lists(meanings(), min_size=1, max_size=4),
    seed=st.integers(min_value=0, max_value=2**31),
    explicit=st.booleans(),
    temperature=st.none() | st.integers(min_value=0, max_value=2),
    extra=st.dictionaries(names, st.integers() | texts, max_size=3),
    with_tools=st.booleans(),
)
def test_requests_that_mean_the_same_share_a_key(
    messages: list[dict[str, Any]],
    seed: int,
    explicit: bool,
    temperature: int | None,
    extra: dict[str, Any],
    with_tools: bool,
) -> None:
    rng = random.Random(seed)
    typed = ChatRequest(
        model="m",
        messages=[typed_message(m) for m in messages],
        temperature=None if temperature is None else float(temperature),
        tools=[TOOL] if with_tools else None,
        extra_body=extra or None,
    )
    as_dicts = ChatRequest(
        model="m",
        messages=[dict_message(m, rng, explicit) for m in messages],
        temperature=temperature,  # an int where the typed request has a float
        tools=[_shuffled(TOOL_DICT, rng)] if with_tools else None,
        extra_body=_shuffled(extra, rng) if extra or not explicit else {},
    )
    key = request_key(Request(typed), IDENTITY)
    assert request_key(Request(as_dicts), IDENTITY) == key
    # Settings that cannot change the output don't count.
    same = Request(
        as_dicts,
        headers={"Authorization": f"Bearer {SECRET}", "x-trace": str(seed)},
        deadline=float(seed),
        on_event=lambda event: None,
        context={"anything": seed},
    )
    assert request_key(same, IDENTITY) == key


def _base() -> ChatRequest:
    return ChatRequest(
        model="m",
        messages=[SystemMessage("be brief"), UserMessage("hello")],
        temperature=0.0,
        tools=[TOOL],
        extra_body={"top_k": 5},
    )


_Change = Callable[[ChatRequest], ChatRequest]
_replace = msgspec.structs.replace
CHANGES: dict[str, _Change] = {
    "model": lambda b: _replace(b, model="m2"),
    "message text": lambda b: _replace(b, messages=[b.messages[0], UserMessage("hello!")]),
    "message role": lambda b: _replace(b, messages=[UserMessage("be brief"), b.messages[1]]),
    "message name": lambda b: _replace(b, messages=[b.messages[0], UserMessage("hello", "bo")]),
    "message order": lambda b: _replace(b, messages=list(reversed(b.messages))),
    "unknown message key": lambda b: _replace(
        b, messages=[b.messages[0], {"role": "user", "content": "hello", "x_unknown": 1}]
    ),
    "temperature": lambda b: _replace(b, temperature=0.5),
    "top_p": lambda b: _replace(b, top_p=0.9),
    "max_tokens": lambda b: _replace(b, max_tokens=10),
    "max_completion_tokens": lambda b: _replace(b, max_completion_tokens=10),
    "stop": lambda b: _replace(b, stop=["\n"]),
    "seed": lambda b: _replace(b, seed=1),
    "n": lambda b: _replace(b, n=2),
    "presence_penalty": lambda b: _replace(b, presence_penalty=0.1),
    "frequency_penalty": lambda b: _replace(b, frequency_penalty=0.1),
    "logprobs": lambda b: _replace(b, logprobs=True),
    "top_logprobs": lambda b: _replace(b, top_logprobs=2),
    "tools": lambda b: _replace(b, tools=None),
    "tool schema": lambda b: _replace(
        b, tools=[Tool(FunctionDefinition("get_weather", parameters={"type": "string"}))]
    ),
    "tool_choice": lambda b: _replace(b, tool_choice="required"),
    "parallel_tool_calls": lambda b: _replace(b, parallel_tool_calls=False),
    "response_format": lambda b: _replace(b, response_format={"type": "json_object"}),
    "reasoning_effort": lambda b: _replace(b, reasoning_effort="low"),
    "user": lambda b: _replace(b, user="u1"),
    "extra_body value": lambda b: _replace(b, extra_body={"top_k": 6}),
    "extra_body key": lambda b: _replace(b, extra_body={"top_k": 5, "min_p": 0.1}),
    "no extra_body": lambda b: _replace(b, extra_body=None),
}


@given(names=st.lists(st.sampled_from(sorted(CHANGES)), min_size=1, max_size=4, unique=True))
def test_any_output_affecting_change_changes_the_key(names: list[str]) -> None:
    base = _base()
    changed = base
    for name in names:
        changed = CHANGES[name](changed)
    assert request_key(Request(changed), IDENTITY) != request_key(Request(base), IDENTITY)


def test_every_change_alone_changes_the_key() -> None:
    base = request_key(Request(_base()), IDENTITY)
    keys = {
        name: request_key(Request(change(_base())), IDENTITY) for name, change in CHANGES.items()
    }
    assert base not in keys.values()
    assert len(set(keys.values())) == len(keys)


def test_stream_backend_and_kind_are_part_of_the_key() -> None:
    body = _base()
    key = request_key(Request(body), IDENTITY)
    assert request_key(Request(body, stream=True), IDENTITY) != key
    assert request_key(Request(body), "openai http://127.0.0.1:2/v1") != key
    assert request_key(Request(body), "anthropic http://127.0.0.1:1/v1") != key
    embed = EmbeddingRequest(model="m", input="hello")
    assert request_key(Request(embed), IDENTITY) != request_key(
        Request(_replace(embed, input=["hello"])), IDENTITY
    )
    # A stream flag on an embedding request changes nothing: embeddings never stream.
    assert request_key(Request(embed, stream=True), IDENTITY) == request_key(
        Request(embed), IDENTITY
    )


@given(
    dimensions=st.none() | st.integers(min_value=1, max_value=4096),
    fmt=st.sampled_from([None, "float", "base64"]),
    extra=st.dictionaries(names, st.integers(), max_size=2),
)
def test_embedding_keys(dimensions: int | None, fmt: Any, extra: dict[str, int]) -> None:
    body = EmbeddingRequest(
        model="e", input=["a", "b"], dimensions=dimensions, encoding_format=fmt, extra_body=extra
    )
    key = request_key(Request(body), IDENTITY)
    assert request_key(Request(_replace(body, extra_body=extra or None)), IDENTITY) == key
    assert request_key(Request(_replace(body, input=["b", "a"])), IDENTITY) != key
    assert request_key(Request(_replace(body, model="e2")), IDENTITY) != key
    assert request_key(Request(_replace(body, dimensions=(dimensions or 0) + 1)), IDENTITY) != key


def test_the_key_is_a_hash_and_never_holds_a_secret() -> None:
    body = ChatRequest(model="m", messages=[UserMessage("hi")])
    backend = llmfast.OpenAIBackend(f"https://user:{SECRET}@api.example.com/v1/", api_key=SECRET)
    identity = backend_identity(Retry()(backend))
    assert identity == "openai https://api.example.com/v1"
    other = backend_identity(llmfast.OpenAIBackend("https://api.example.com/v1", api_key="sk-2"))
    assert other == identity  # the API key plays no part
    canonical = canonical_request(Request(body, headers={"Authorization": SECRET}), identity)
    assert SECRET.encode() not in canonical
    key = request_key(Request(body), identity)
    assert len(key) == 40
    assert int(key, 16) >= 0
    keyed = backend_identity(llmfast.OpenAIBackend(f"https://x.io/v1?api-version=2&key={SECRET}"))
    assert keyed == "openai https://x.io/v1?api-version=2"


def test_a_router_is_named_by_its_routes() -> None:
    from llmfast.router import Router

    one = Router([llmfast.OpenAIBackend("http://a/v1", api_key=SECRET)])
    two = Router([llmfast.OpenAIBackend("http://b/v1", api_key=SECRET)])
    assert backend_identity(one) != backend_identity(two)
    assert SECRET not in backend_identity(one)


@pytest.mark.parametrize(
    ("params", "deterministic"),
    [
        ({}, False),
        ({"temperature": 0.0}, True),
        ({"temperature": 0}, True),
        ({"temperature": 0.7}, False),
        ({"temperature": 0.7, "seed": 3}, True),
        ({"extra_body": {"temperature": 0}}, True),
        ({"extra_body": {"seed": 1}}, True),
    ],
)
def test_deterministic_requests(params: dict[str, Any], deterministic: bool) -> None:
    body = ChatRequest(model="m", messages=[UserMessage("x")], **params)
    assert is_deterministic(Request(body)) is deterministic
    assert is_deterministic(Request(EmbeddingRequest(model="e", input="x")))
