"""The benchmarked clients: one small async adapter per library, loaded on demand.

Each adapter lives in its own module (``client_<name>.py``) so that a worker process
imports only the library it measures.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Protocol

__all__ = ["CLIENTS", "MODEL", "PROMPT", "STREAM_ONLY", "BenchClient", "create", "is_installed"]

#: Benchmarked clients, in table order; ``raw`` is the hand-written lower bound.
CLIENTS: tuple[str, ...] = ("raw", "raw_bulk", "llmfast", "openai", "litellm")

#: Clients measured in streaming scenarios only (``raw_bulk`` chats exactly like ``raw``).
STREAM_ONLY: frozenset[str] = frozenset({"raw_bulk"})

#: The import each client needs (checked without importing it).
_REQUIRES: dict[str, tuple[str, ...]] = {
    "raw": ("aiohttp", "msgspec"),
    "raw_bulk": ("aiohttp", "msgspec"),
    "llmfast": ("llmfast",),
    "openai": ("openai",),
    "litellm": ("litellm",),
}

MODEL = "bench-model"
API_KEY = "sk-bench"
PROMPT = "Write a short poem about fast HTTP clients."
MAX_TOKENS = 64


class BenchClient(Protocol):
    """What every adapter offers: one chat call, one streamed call, close."""

    async def chat(self, prompt: str) -> str:
        """Send a non-streaming chat completion; return the reply text."""
        ...

    async def stream(self, prompt: str) -> tuple[int, str]:
        """Stream a chat completion to the end; return (chunks received, full text)."""
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
        raise ValueError(f"unknown client {name!r}; choose from {', '.join(CLIENTS)}")
    module = importlib.import_module(f"client_{name}")
    factory: _Factory = module.create
    return factory(base_url)
