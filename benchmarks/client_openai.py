"""The official OpenAI SDK: ``AsyncOpenAI`` with its default (httpx) transport and settings."""

from __future__ import annotations

from collections.abc import Sequence

from clients import API_KEY, DIMENSIONS, EMBED_MODEL, MAX_TOKENS, MODEL
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

__all__ = ["OpenAIClient", "create"]


class OpenAIClient:
    def __init__(self, base_url: str) -> None:
        self._client = AsyncOpenAI(base_url=base_url, api_key=API_KEY)

    async def chat(self, prompt: str) -> str:
        messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": prompt}]
        reply = await self._client.chat.completions.create(
            model=MODEL, messages=messages, max_tokens=MAX_TOKENS
        )
        return reply.choices[0].message.content or ""

    async def stream(self, prompt: str) -> tuple[int, str]:
        messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": prompt}]
        parts: list[str] = []
        chunks = 0
        stream = await self._client.chat.completions.create(
            model=MODEL,
            messages=messages,
            max_tokens=MAX_TOKENS,
            stream=True,
            stream_options={"include_usage": True},
        )
        async with stream:
            async for chunk in stream:
                chunks += 1
                text = chunk.choices[0].delta.content if chunk.choices else None
                if text:
                    parts.append(text)
        return chunks, "".join(parts)

    async def embed(self, texts: Sequence[str]) -> int:
        reply = await self._client.embeddings.create(
            model=EMBED_MODEL, input=list(texts), dimensions=DIMENSIONS, encoding_format="float"
        )
        return sum(len(item.embedding) for item in reply.data)

    async def aclose(self) -> None:
        await self._client.close()


def create(base_url: str) -> OpenAIClient:
    return OpenAIClient(base_url)
