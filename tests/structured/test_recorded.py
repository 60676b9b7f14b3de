"""Structured streams over recorded provider bodies (``../shared/conformance/streams``,
real captures from openai-python's ``.parse()`` tests and the other SDKs), replayed over
HTTP: a tool call decodes into its type, a refusal and a token limit are typed errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import msgspec
import pytest

import llmfast
from llmfast.errors import OutputRefusedError, OutputTruncatedError
from llmfast.structured import output_spec
from llmfast.structured.stream import StructuredStream
from llmfast.testing import MockServer, Reply
from tests.conformance import conformance_dir

FOLDER = conformance_dir()
pytestmark = pytest.mark.skipif(FOLDER is None, reason="../shared/conformance is not present")

GetWeatherArgs = msgspec.defstruct(
    "GetWeatherArgs", [("city", str), ("country", str), ("units", Literal["c", "f"])]
)
AnthropicWeather = msgspec.defstruct("get_weather", [("location", str)])
GeminiWeather = msgspec.defstruct("weather", [("location", str)])
OllamaWeather = msgspec.defstruct("get_weather", [("city", str)])
MakeFile = msgspec.defstruct("make_file", [("filename", str), ("lines_of_text", list[str])])


def body(name: str) -> bytes:
    assert FOLDER is not None
    return (Path(FOLDER) / "streams" / f"{name}.txt").read_bytes()


async def replay(provider: str, name: str, output: Any, mode: str) -> StructuredStream[Any]:
    content_type = "application/x-ndjson" if provider == "ollama" else "text/event-stream"
    async with MockServer() as server:
        server.enqueue(Reply.raw(body(name), content_type=content_type, write_size=97))
        key = None if provider == "ollama" else "k"
        backend = llmfast.backend_for(
            provider, base_url=server.url_for(provider), api_key=key, model="m"
        )
        async with (
            llmfast.Client(backend, layers=[]) as client,
            StructuredStream(client, "x", output_spec(output), mode, {}) as stream,  # type: ignore[arg-type]
        ):
            async for _ in stream.partials():
                pass
    return stream


@pytest.mark.parametrize(
    ("provider", "name", "output", "expected"),
    [
        ("openai", "openai_chat_tool_call", GetWeatherArgs, GetWeatherArgs("Edinburgh", "UK", "c")),
        ("anthropic", "anthropic_tool_use", AnthropicWeather, AnthropicWeather("Paris")),
        ("gemini", "gemini_tool_call", GeminiWeather, GeminiWeather("San Francisco")),
        ("ollama", "ollama_chat_tool_call", OllamaWeather, OllamaWeather("Tokyo")),
    ],
)
async def test_recorded_tool_calls_decode_into_their_type(
    provider: str, name: str, output: Any, expected: Any
) -> None:
    stream = await replay(provider, name, output, "tool")
    assert stream.output == expected


async def test_a_recorded_refusal_is_a_typed_error() -> None:
    with pytest.raises(OutputRefusedError) as info:
        await replay("openai", "openai_chat_refusal", GetWeatherArgs, "native")
    assert info.value.refusal == "I'm sorry, I can't assist with that request."


@pytest.mark.parametrize(
    ("provider", "name", "output", "mode"),
    [
        ("openai", "openai_chat_length_max_tokens", GetWeatherArgs, "native"),
        ("anthropic", "anthropic_max_tokens_partial_tool_input", MakeFile, "tool"),
    ],
)
async def test_a_recorded_token_limit_is_truncation_not_bad_json(
    provider: str, name: str, output: Any, mode: str
) -> None:
    with pytest.raises(OutputTruncatedError):
        await replay(provider, name, output, mode)
