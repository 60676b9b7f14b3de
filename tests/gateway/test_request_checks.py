"""A chat body read into the typed request: every typed field as checked, the rest as
``extra_body``, a wrong type a 400 naming the field."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from llmfast.gateway.openai_routes import BadInput, _ChatBody, _parse_chat_checked, parse_chat
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


_MESSAGES = '"messages":[{"role":"user","content":"x"}]'


@pytest.mark.parametrize(
    "body",
    [
        '{"model":"m",%s}',
        '{"model":"m",%s,"stream":true,"stream_options":{"include_usage":true}}',
        '{"model":"m",%s,"stream":true,"stream_options":{}}',
        '{"model":"m",%s,"stream_options":null,"temperature":null,"stop":"x","n":2.0}',
        '{"model":"m",%s,"tools":[{"type":"function"}],"tool_choice":{"type":"function"}}',
        '{"model":"m","model":"n",%s}',  # the last of a repeated key, as a dict has it
        '{"model":5,"model":"n",%s}',
        '{"model":"n","model":5,%s}',
        '{"model":"m",%s,"top_k":1}',
        '{"model":"m",%s,"prompt_cache_key":"k"}',  # extra_body: the gateway has no field
        '{"model":"m",%s,"stream":null}',
        '{"model":"m",%s,"stream":1}',
        '{"model":"m",%s,"stream_options":[]}',
        '{"model":"m",%s,"stream":"yes","seed":"s"}',  # which of two faults is named
        '{"model":"m",%s,"top_k":1,"seed":"s"}',
        '{"model":"m",%s,"n":2.5}',
        '{"model":5,%s}',
        '{"model":"m","messages":[]}',
        '{"model":"m","messages":["x"]}',
        '{"model":"m"}',
        "{%s}",
        '{"model":"m",%s} trailing',
        "[1]",
        "",
        "[" * 10_000,
    ],
)
def test_the_one_pass_decode_answers_as_the_checking_path(body: str) -> None:
    """Typed fields only go through one msgspec pass; every body, with an unknown field,
    a wrong type or no JSON at all, gets the request or the 400 the checking path gives."""
    raw = (body % _MESSAGES if "%s" in body else body).encode()

    def answer(parse: Any) -> Any:
        try:
            return parse(raw)
        except BadInput as bad:
            return (bad.status, bad.message, bad.code)

    assert answer(parse_chat) == answer(_parse_chat_checked)


def test_unknown_fields_are_carried_with_the_typed_ones() -> None:
    raw = b'{"model":"m",%s,"max_tokens":3,"top_k":2,"metadata":{"a":1}}' % _MESSAGES.encode()
    request, _, _ = parse_chat(raw)
    assert request.max_tokens == 3
    assert request.extra_body == {"top_k": 2, "metadata": {"a": 1}}


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_tokens", '"5"'), ("temperature", '"hot"'), ("stop", "3"), ("tools", "{}")],
)
def test_a_type_error_names_the_field(field: str, value: str) -> None:
    raw = b'{"model":"m",%s,"%s":%s}' % (_MESSAGES.encode(), field.encode(), value.encode())
    with pytest.raises(BadInput) as raised:
        parse_chat(raw)
    assert raised.value.status == 400
    assert f"$.{field}" in raised.value.message
