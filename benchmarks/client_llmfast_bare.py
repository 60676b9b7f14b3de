"""llmfast without its default retry layer (``layers=[]``): what the default costs."""

from __future__ import annotations

from client_llmfast import LLMFastClient

__all__ = ["create"]


def create(base_url: str) -> LLMFastClient:
    return LLMFastClient(base_url, layers=[])
