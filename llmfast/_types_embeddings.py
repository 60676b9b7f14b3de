"""Embeddings results, as msgspec Structs (import them from [llmfast.types][])."""

from __future__ import annotations

import msgspec

from llmfast._types_messages import _Wire


class Embedding(_Wire):
    """One input's embedding vector."""

    embedding: list[float]
    index: int = 0
    object: str = "embedding"


class EmbeddingUsage(_Wire):
    """Token counts of an embeddings call; ``batch`` marks a provider-batch result
    (billed at the batch rate), as ``Usage.batch`` does."""

    prompt_tokens: int = 0
    total_tokens: int = 0
    batch: bool = False


class EmbeddingResponse(_Wire):
    """The result of ``client.embed``."""

    data: list[Embedding] = msgspec.field(default_factory=list)
    model: str = ""
    usage: EmbeddingUsage | None = None
    object: str = "list"

    @property
    def vectors(self) -> list[list[float]]:
        """The vectors in input order."""
        data = self.data
        if any(item.index != position for position, item in enumerate(data)):
            data = sorted(data, key=lambda item: item.index)
        return [item.embedding for item in data]
