"""``BatchResult``: the outcome of one batch item, whichever way the batch ran."""

from __future__ import annotations

from dataclasses import dataclass

from llmfast.types import ChatCompletion, ChatRequest, EmbeddingRequest, EmbeddingResponse

__all__ = ["BatchResult"]


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The outcome of one batch item: a ``completion`` or an ``error``.

    Attributes:
        index: the item's position in the input (0-based).
        request_hash: a stable hash of the normalized request (as in the checkpoint).
        request: the request that was (or, when ``resumed``, had been) sent (an
            ``EmbeddingRequest`` only in a provider batch of embeddings).
        completion: the result, or ``None`` when the item failed.
        error: the exception the item failed with, or ``None``.
        resumed: True when the result was read back from the checkpoint.
        embeddings: the result of an embeddings request (provider batches only).
    """

    index: int
    request_hash: str
    request: ChatRequest | EmbeddingRequest
    completion: ChatCompletion | None = None
    error: Exception | None = None
    resumed: bool = False
    embeddings: EmbeddingResponse | None = None

    @property
    def ok(self) -> bool:
        """True when the item succeeded."""
        return self.error is None

    @property
    def text(self) -> str | None:
        """The completion's text (choice 0), or ``None`` when it failed."""
        return None if self.completion is None else self.completion.text
