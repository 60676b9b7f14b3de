"""A chat body read into the typed request: every typed field as checked, the rest as
``extra_body``, a wrong type a 400 naming the field."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from llmfast.gateway.openai_routes import BadInput, _ChatBody, parse_chat
from llmfast.types import ChatRequest

_EVERY_FIELD: dict[str, Any] = {
    "model": "fast",
    "messages": [{"role": "user", "content": "hi"}],
    "temperature": 1,  # an int where a float is typed: it becomes 1.0
    "top_p": 0.5,
    "max_tokens": 5,
    "max_completion_tokens": 6,
    "stop": ["x"],
    "seed": 7,
    "n": 1,
    "presence_penalty": 0.1,
    "frequency_penalty": 0.2,
    "logprobs": True,
    "top_logprobs": 2,
    "tools": [{"type": "function", "function": {"name": "f"}}],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "response_format": {"type": "json_object"},
    "reasoning_effort": "low",
    "user": "u",
}


@pytest.mark.parametrize("extra", [{}, {"top_k": 3, "prompt_cache_key": "k"}])
def test_every_typed_field_is_carried_as_checked(extra: dict[str, Any]) -> None:
    body = {**_EVERY_FIELD, **extra, "stream": True, "stream_options": {"include_usage": True}}
    request, stream, include_usage = parse_chat(json.dumps(body).encode())
    checked = msgspec.convert(_EVERY_FIELD, _ChatBody)
    assert request == ChatRequest(**msgspec.structs.asdict(checked), extra_body=extra or None)
    assert request.temperature == 1.0
    assert isinstance(request.temperature, float)
    assert (stream, include_usage) == (True, True)


def test_only_some_fields_leave_the_others_unset() -> None:
    request, stream, _ = parse_chat(b'{"model":"m","messages":[{"role":"user","content":"x"}]}')
    assert request == ChatRequest(model="m", messages=[{"role": "user", "content": "x"}])
    assert not stream


@pytest.mark.parametrize(
    "body",
    [
        b'{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":"5"}',
        b'{"model":"m","messages":[{"role":"user","content":"x"}],"top_k":1,"seed":"s"}',
        b'{"model":"m","messages":[]}',
    ],
)
def test_a_wrong_field_is_a_400(body: bytes) -> None:
    with pytest.raises(BadInput) as raised:
        parse_chat(body)
    assert raised.value.status == 400
