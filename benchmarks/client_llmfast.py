"""llmfast, used the way its README shows: the default client (which retries)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clients import API_KEY, DIMENSIONS, EMBED_MODEL, MAX_TOKENS, MODEL

import llmfast

__all__ = ["LLMFastClient", "create"]


class LLMFastClient:
    def __init__(self, base_url: str, **options: Any) -> None:
        self._client = llmfast.Client(
            base_url=base_url,
            api_key=API_KEY,
            model=MODEL,
            pool=llmfast.PoolConfig(limit=1000),
            **options,
        )

    async def chat(self, prompt: str) -> str:
        reply = await self._client.chat(prompt, max_tokens=MAX_TOKENS)
        return reply.text or ""

    async def stream(self, prompt: str) -> tuple[int, str]:
        chunks = 0
        async with self._client.stream(prompt, max_tokens=MAX_TOKENS) as s:
            async for _chunk in s:
                chunks += 1
            text = s.completion.text or ""
        return chunks, text

    async def embed(self, texts: Sequence[str]) -> int:
        result = await self._client.embed(
            texts, model=EMBED_MODEL, dimensions=DIMENSIONS, encoding_format="float"
        )
        return sum(len(vector) for vector in result.vectors)

    async def aclose(self) -> None:
        await self._client.aclose()


def create(base_url: str) -> LLMFastClient:
    return LLMFastClient(base_url)
