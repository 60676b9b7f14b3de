"""Token estimates made before a request is sent (corrected later from ``usage``).

An estimator is any ``Callable[[ChatRequest | EmbeddingRequest], int]``. The built-in
ones count the prompt (message texts, tool definitions, images) and add the
completion the request may produce: ``max_completion_tokens`` or ``max_tokens``
(or ``completion_tokens`` when neither is set), times ``n``. The prompt is walked
by ``llmfast.tokens`` (`prompt_tokens`), which ``client.count_tokens`` uses too.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import threading
from collections.abc import Callable

from llmfast.tokens import encoder, input_tokens, loaded_encoder, prompt_tokens
from llmfast.types import ChatRequest, EmbeddingRequest

__all__ = ["CharEstimator", "TiktokenEstimator", "TokenEstimator", "default_estimator"]

TokenEstimator = Callable[[ChatRequest | EmbeddingRequest], int]

_log = logging.getLogger("llmfast.ratelimit")


class CharEstimator:
    """A fast estimate: one token per ``chars_per_token`` characters."""

    def __init__(self, *, chars_per_token: float = 4.0, completion_tokens: int = 256) -> None:
        if chars_per_token <= 0 or completion_tokens < 0:
            raise ValueError("chars_per_token must be > 0 and completion_tokens >= 0")
        self.chars_per_token = chars_per_token
        self.completion_tokens = completion_tokens

    def count(self, text: str) -> int:
        """Tokens in one text."""
        return math.ceil(len(text) / self.chars_per_token)

    def __call__(self, body: ChatRequest | EmbeddingRequest) -> int:
        if type(body) is ChatRequest:
            completion = body.max_completion_tokens or body.max_tokens or self.completion_tokens
            return prompt_tokens(body, self.count) + completion * (body.n or 1)
        return input_tokens(body.input, self.count)  # type: ignore[union-attr]


class TiktokenEstimator(CharEstimator):
    """Exact OpenAI token counts with ``tiktoken`` (``pip install 'llmfast[tokens]'``).

    The encoding is loaded in a background thread on first use (tiktoken may need to
    download it) and shared with [`Client.count_tokens`][llmfast.Client.count_tokens];
    until it is ready, or if it cannot be loaded, texts are counted like
    ``CharEstimator`` does.
    """

    def __init__(self, *, encoding: str = "o200k_base", completion_tokens: int = 256) -> None:
        super().__init__(completion_tokens=completion_tokens)
        self.encoding = encoding
        self._encode: Callable[[str], list[int]] | None = loaded_encoder(encoding)
        self._loading = False

    def count(self, text: str) -> int:
        encode = self._encode
        if encode is not None:
            return len(encode(text))
        if not self._loading:
            self._loading = True
            threading.Thread(target=self._load, name="llmfast-tiktoken", daemon=True).start()
        return super().count(text)

    def load(self) -> bool:
        """Load the encoding now, in this thread; True when tiktoken is in use."""
        self._load()
        return self._encode is not None

    def _load(self) -> None:
        self._encode = encoder(self.encoding)
        if self._encode is None:  # no network, unknown encoding...: keep counting characters
            _log.warning(
                "tiktoken encoding %r unavailable; estimating by characters", self.encoding
            )


def default_estimator() -> CharEstimator:
    """``TiktokenEstimator`` when tiktoken is installed, else ``CharEstimator``."""
    if importlib.util.find_spec("tiktoken") is not None:
        return TiktokenEstimator()
    return CharEstimator()
