"""Shared set-up for the pydantic-ai tests: a client per wire format, raw bodies with
exact usage figures."""

from __future__ import annotations

import gc
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pydantic_ai.usage import RunUsage

import llmfast
from llmfast.integrations.pydantic_ai import LLMFastModel
from llmfast.testing import MockServer, Reply
from llmfast.transport import Layer

PROVIDERS = ("openai", "anthropic")


@pytest.fixture(scope="module")
def shared_server() -> Iterator[MockServer]:
    """One server on a thread of its own for a whole test module (closing one costs
    ~0.25 s); ``server`` hands it to each test reset.

    While the module runs, the objects alive at its start (pydantic-ai's many schemas
    among them) are frozen out of the cyclic GC: the suite's per-test ``gc.collect()``
    then takes microseconds instead of ~0.3 s, and still finds whatever a test leaks.
    """
    gc.freeze()
    try:
        with MockServer.in_thread() as running:
            yield running
    finally:
        gc.unfreeze()


@pytest.fixture
def server(shared_server: MockServer) -> MockServer:
    """The module's server, with no requests recorded and nothing queued."""
    shared_server.reset()
    return shared_server


@asynccontextmanager
async def model_for(
    server: MockServer, provider: str, *, layers: list[Layer] | None = None, **kwargs: Any
) -> AsyncIterator[LLMFastModel]:
    """An ``LLMFastModel`` over a client of ``provider``'s format, pointed at ``server``."""
    async with llmfast.Client(
        provider=provider,
        base_url=server.url_for(provider),
        api_key=None if provider == "ollama" else "sk-test",
        model="mock-model",
        layers=[] if layers is None else layers,
    ) as client:
        yield LLMFastModel(client, **kwargs)


def openai_body(
    text: str | None,
    usage: dict[str, Any],
    *,
    calls: list[dict[str, Any]] | None = None,
) -> Reply:
    """A whole OpenAI chat completion with the given usage (for exact usage checks)."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function", "function": call}
            for i, call in enumerate(calls)
        ]
    body = {
        "id": "chatcmpl-raw",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "mock-model",
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if calls else "stop",
            }
        ],
        "usage": usage,
    }
    return Reply.raw(json.dumps(body).encode(), content_type="application/json")


def anthropic_body(text: str, usage: dict[str, Any]) -> Reply:
    """A whole Anthropic message with the given usage."""
    body = {
        "id": "msg_raw",
        "type": "message",
        "role": "assistant",
        "model": "mock-model",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }
    return Reply.raw(json.dumps(body).encode(), content_type="application/json")


def run_usage(result: Any) -> RunUsage:
    """A run's usage: a property in current pydantic-ai, a method in older releases."""
    usage = result.usage
    return usage if isinstance(usage, RunUsage) else usage()
