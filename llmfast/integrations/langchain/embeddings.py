"""``LLMFastEmbeddings``: LangChain embeddings on [Client.embed][llmfast.Client.embed]."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator
from typing_extensions import Self

from llmfast.redact import redact_url

from ._clients import Clients, connect

__all__ = ["LLMFastEmbeddings"]


class LLMFastEmbeddings(BaseModel, Embeddings):
    """LangChain embeddings on llmfast: ``LLMFastEmbeddings(model="text-embedding-3-small")``,
    or ``LLMFastEmbeddings(client=llmfast.Client(...), model=...)``.

    Takes the connection settings of [ChatLLMFast][llmfast.integrations.langchain.ChatLLMFast]
    (``provider``, ``base_url``, ``api_key``, ``layers``, ``max_retries``...; any
    provider with an embeddings endpoint: OpenAI-compatible, Gemini, Ollama).
    ``embed_documents`` sends ``chunk_size`` texts per request; the async form sends
    those requests concurrently.
    """

    model_config = ConfigDict(
        populate_by_name=True, protected_namespaces=(), extra="forbid", arbitrary_types_allowed=True
    )

    client: Any = Field(default=None, exclude=True, repr=False)
    """An llmfast ``Client`` or ``SyncClient`` to call through (instead of the settings)."""
    model: str | None = None
    provider: str | None = None
    base_url: str | None = None
    api_key: SecretStr | None = None
    dimensions: int | None = None
    """Length of the vectors, for models that can shorten them."""
    chunk_size: int = Field(default=1000, gt=0)
    """Texts per request."""
    timeout: float | None = None
    max_retries: int | None = None
    default_headers: dict[str, str] | None = None
    layers: list[Any] | None = Field(default=None, exclude=True)
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """More request parameters (sent in the body, ``extra_body``)."""

    _clients: Clients = PrivateAttr()

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name == "base_url" and value else value

    _params: dict[str, Any] = PrivateAttr()

    @model_validator(mode="after")
    def _llmfast_connect(self) -> Self:
        self._clients, _ = connect(self)
        params: dict[str, Any] = {"model": self.model}
        if self.dimensions is not None:
            params["dimensions"] = self.dimensions
        if self.timeout is not None:
            params["timeout"] = self.timeout
        if self.model_kwargs:
            params["extra_body"] = dict(self.model_kwargs)
        self._params = params
        return self

    def _batches(self, texts: list[str]) -> list[list[str]]:
        size = self.chunk_size
        return [texts[i : i + size] for i in range(0, len(texts), size)]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order."""
        if not texts:
            return []
        client = self._clients.sync_client()
        vectors: list[list[float]] = []
        for batch in self._batches(texts):
            vectors.extend(client.embed(batch, **self._params).vectors)
        return vectors

    def embed_query(self, text: str) -> list[float]:
        """The vector of one text."""
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order (the batches sent concurrently)."""
        if not texts:
            return []
        if not self._clients.has_async:
            return await super().aembed_documents(texts)
        client = await self._clients.client()
        replies = await asyncio.gather(
            *(client.embed(batch, **self._params) for batch in self._batches(texts))
        )
        return [vector for reply in replies for vector in reply.vectors]

    async def aembed_query(self, text: str) -> list[float]:
        """The vector of one text."""
        return (await self.aembed_documents([text]))[0]

    def close(self) -> None:
        """Close the blocking client these embeddings made (a given ``client=`` is kept)."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close the async client made for the running loop (else closed with the loop)."""
        await self._clients.aclose()
