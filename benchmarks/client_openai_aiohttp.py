"""The official OpenAI SDK with its aiohttp transport: ``http_client=DefaultAioHttpClient()``."""

from __future__ import annotations

from client_openai import OpenAIClient
from clients import API_KEY
from openai import AsyncOpenAI, DefaultAioHttpClient

__all__ = ["OpenAIAioHttpClient", "create"]


class OpenAIAioHttpClient(OpenAIClient):
    def __init__(self, base_url: str) -> None:
        self._client = AsyncOpenAI(
            base_url=base_url, api_key=API_KEY, http_client=DefaultAioHttpClient()
        )


def create(base_url: str) -> OpenAIAioHttpClient:
    return OpenAIAioHttpClient(base_url)
