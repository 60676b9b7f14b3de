"""The benchmarked clients: one small async adapter per library, loaded on demand.

Each adapter lives in its own module (``client_<name>.py``) so that a worker process
imports only the library it measures.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from typing import Protocol

__all__ = [
    "CLIENTS",
    "DIMENSIONS",
    "EMBED_MODEL",
    "EXTRA_CLIENTS",
    "MODEL",
    "PROMPT",
    "SLOW",
    "STREAM_ONLY",
    "TEXTS",
    "BenchClient",
    "create",
    "is_installed",
]

#: Benchmarked clients, in table order; ``raw`` is the hand-written lower bound.
CLIENTS: tuple[str, ...] = ("raw", "raw_bulk", "llmfast", "openai", "openai_aiohttp", "litellm")

#: Clients measured only when named in ``run.py --clients``: ``llmfast_bare`` is llmfast
#: with ``layers=[]``, to show what the default retry layer costs.
EXTRA_CLIENTS: tuple[str, ...] = ("llmfast_bare",)

#: Clients so slow that fewer repeats are enough to rank them (``run.py --slow-repeats``).
SLOW: frozenset[str] = frozenset({"litellm"})

#: Clients measured in streaming scenarios only (``raw_bulk`` chats exactly like ``raw``).
STREAM_ONLY: frozenset[str] = frozenset({"raw_bulk"})

#: The import each client needs (checked without importing it).
_REQUIRES: dict[str, tuple[str, ...]] = {
    "raw": ("aiohttp", "msgspec"),
    "raw_bulk": ("aiohttp", "msgspec"),
    "llmfast": ("llmfast",),
    "llmfast_bare": ("llmfast",),
    "openai": ("openai",),
    "openai_aiohttp": ("openai", "aiohttp"),
    "litellm": ("litellm",),
}

MODEL = "bench-model"
API_KEY = "sk-bench"
PROMPT = "Write a short poem about fast HTTP clients."
MAX_TOKENS = 64
#: One embeddings call: these texts, vectors of ``DIMENSIONS`` floats (JSON, not base64),
#: from a model name litellm accepts ``dimensions`` for.
EMBED_MODEL = "text-embedding-3-small"
TEXTS: tuple[str, ...] = tuple(
    f"Sentence number {i} to embed, about fast clients." for i in range(8)
)
DIMENSIONS = 256


class BenchClient(Protocol):
    """What every adapter offers: a chat call, a streamed call, an embeddings call, close."""

    async def chat(self, prompt: str) -> str:
        """Send a non-streaming chat completion; return the reply text."""
        ...

    async def stream(self, prompt: str) -> tuple[int, str]:
        """Stream a chat completion to the end; return (chunks received, full text)."""
        ...

    async def embed(self, texts: Sequence[str]) -> int:
        """Embed ``texts`` (``DIMENSIONS`` floats each); return the number of floats received."""
        ...

    async def aclose(self) -> None:
        """Release every connection."""
        ...


class _Factory(Protocol):
    def __call__(self, base_url: str) -> BenchClient: ...


def is_installed(name: str) -> bool:
    """True if the libraries client ``name`` needs can be imported."""
    return all(importlib.util.find_spec(module) is not None for module in _REQUIRES[name])


def create(name: str, base_url: str) -> BenchClient:
    """Import ``client_<name>`` and build its adapter for the server at ``base_url``."""
    if name not in _REQUIRES:
        choices = ", ".join((*CLIENTS, *EXTRA_CLIENTS))
        raise ValueError(f"unknown client {name!r}; choose from {choices}")
    module = importlib.import_module(f"client_{name}")
    factory: _Factory = module.create
    return factory(base_url)
