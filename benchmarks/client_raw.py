"""The lower bound: what a careful engineer hand-writes with aiohttp and msgspec."""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp
import msgspec
from clients import API_KEY, DIMENSIONS, EMBED_MODEL, MAX_TOKENS, MODEL

__all__ = ["RawClient", "create"]


class Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class Message(msgspec.Struct):
    role: str | None = None
    content: str | None = None


class Choice(msgspec.Struct):
    message: Message
    index: int = 0
    finish_reason: str | None = None


class Completion(msgspec.Struct):
    id: str
    choices: list[Choice]
    usage: Usage | None = None


class Delta(msgspec.Struct):
    role: str | None = None
    content: str | None = None


class ChunkChoice(msgspec.Struct):
    delta: Delta
    index: int = 0
    finish_reason: str | None = None


class Chunk(msgspec.Struct):
    id: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class EmbeddingItem(msgspec.Struct):
    embedding: list[float]
    index: int = 0


class EmbeddingList(msgspec.Struct):
    data: list[EmbeddingItem]
    usage: Usage | None = None


_DATA = b"data: "
_DONE = b"[DONE]"


class RawClient:
    """One session, encoder and decoders built once; SSE parsed line by line."""

    def __init__(self, base_url: str) -> None:
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._embed_url = base_url.rstrip("/") + "/embeddings"
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000))
        self._headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
        self._encode = msgspec.json.Encoder().encode
        self._decode_completion = msgspec.json.Decoder(Completion).decode
        self._decode_chunk = msgspec.json.Decoder(Chunk).decode
        self._decode_embeddings = msgspec.json.Decoder(EmbeddingList).decode

    async def chat(self, prompt: str) -> str:
        body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": MAX_TOKENS,
        }
        async with self._session.post(
            self._url, data=self._encode(body), headers=self._headers
        ) as resp:
            data = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {data[:200]!r}")
        return self._decode_completion(data).choices[0].message.content or ""

    async def stream(self, prompt: str) -> tuple[int, str]:
        body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": MAX_TOKENS,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        decode = self._decode_chunk
        parts: list[str] = []
        chunks = 0
        done = False
        async with self._session.post(
            self._url, data=self._encode(body), headers=self._headers
        ) as resp:
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {(await resp.read())[:200]!r}")
            # Read to EOF (not just to [DONE]) so the connection goes back to the pool.
            async for line in resp.content:
                if done or not line.startswith(_DATA):
                    continue
                payload = line[6:]
                if payload.startswith(_DONE):
                    done = True
                    continue
                chunk = decode(payload)
                chunks += 1
                text = chunk.choices[0].delta.content if chunk.choices else None
                if text:
                    parts.append(text)
        if not done:
            raise RuntimeError("stream ended without [DONE]")
        return chunks, "".join(parts)

    async def embed(self, texts: Sequence[str]) -> int:
        body = {
            "model": EMBED_MODEL,
            "input": list(texts),
            "dimensions": DIMENSIONS,
            "encoding_format": "float",
        }
        async with self._session.post(
            self._embed_url, data=self._encode(body), headers=self._headers
        ) as resp:
            data = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {data[:200]!r}")
        return sum(len(item.embedding) for item in self._decode_embeddings(data).data)

    async def aclose(self) -> None:
        await self._session.close()


def create(base_url: str) -> RawClient:
    return RawClient(base_url)
