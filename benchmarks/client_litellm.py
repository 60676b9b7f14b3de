"""litellm: ``litellm.acompletion`` against an OpenAI-compatible ``api_base``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

# Use the bundled model-cost map instead of fetching it over the network at import.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
from clients import API_KEY, DIMENSIONS, EMBED_MODEL, MAX_TOKENS, MODEL

__all__ = ["LiteLLMClient", "create"]


class LiteLLMClient:
    def __init__(self, base_url: str) -> None:
        litellm.telemetry = False
        self._kwargs: dict[str, Any] = {
            "model": f"openai/{MODEL}",
            "api_base": base_url,
            "api_key": API_KEY,
            "max_tokens": MAX_TOKENS,
        }

    async def chat(self, prompt: str) -> str:
        messages = [{"role": "user", "content": prompt}]
        reply: Any = await litellm.acompletion(messages=messages, **self._kwargs)
        content: str | None = reply.choices[0].message.content
        return content or ""

    async def stream(self, prompt: str) -> tuple[int, str]:
        messages = [{"role": "user", "content": prompt}]
        parts: list[str] = []
        chunks = 0
        stream: Any = await litellm.acompletion(
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
            **self._kwargs,
        )
        async for chunk in stream:
            chunks += 1
            text = chunk.choices[0].delta.content if chunk.choices else None
            if text:
                parts.append(text)
        return chunks, "".join(parts)

    async def embed(self, texts: Sequence[str]) -> int:
        reply: Any = await litellm.aembedding(
            model=f"openai/{EMBED_MODEL}",
            input=list(texts),
            api_base=self._kwargs["api_base"],
            api_key=API_KEY,
            dimensions=DIMENSIONS,
            encoding_format="float",
        )
        return sum(len(item["embedding"]) for item in reply.data)

    async def aclose(self) -> None:
        close: Any = getattr(litellm, "close_litellm_async_clients", None)
        if close is not None:
            await close()


def create(base_url: str) -> LiteLLMClient:
    return LiteLLMClient(base_url)
