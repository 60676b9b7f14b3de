"""A real LLM API server for tests, demos and benchmarks: it speaks the OpenAI,
Anthropic Messages, Ollama and Gemini wire formats, with scripted replies and faults.

>>> async with MockServer() as server:          # doctest: +SKIP
...     server.enqueue(Reply.text("Hello!"), Reply.error(429, retry_after=1))
...     ...  # point any OpenAI-compatible client at server.url,
...     ...  # or a backend for another provider at server.url_for("anthropic")

The names load on first use, so that llmfast's pytest plugin (``pytest_plugin``),
which pytest imports in every run, does not load aiohttp until a test needs the server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .flow import StreamFlow
    from .replies import Reply
    from .server import MockServer, RecordedRequest

__all__ = ["MockServer", "RecordedRequest", "Reply", "StreamFlow"]

_WHERE = {
    "MockServer": ".server",
    "RecordedRequest": ".server",
    "Reply": ".replies",
    "StreamFlow": ".flow",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
