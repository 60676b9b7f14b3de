"""Token estimates made before a request is sent (corrected later from ``usage``).

An estimator is any ``Callable[[ChatRequest | EmbeddingRequest], int]``. The built-in
ones count the prompt (message texts, tool definitions, images) and add the
completion the request may produce: ``max_completion_tokens`` or ``max_tokens``
(or ``completion_tokens`` when neither is set), times ``n``.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec

from llmfast.types import ChatRequest, EmbeddingRequest

__all__ = ["CharEstimator", "TiktokenEstimator", "TokenEstimator", "default_estimator"]

TokenEstimator = Callable[[ChatRequest | EmbeddingRequest], int]

_log = logging.getLogger("llmfast.ratelimit")
_encode_json = msgspec.json.Encoder().encode
_MESSAGE_OVERHEAD = 4  # role and separators, per message (OpenAI's published rule of thumb)
_IMAGE_TOKENS = 85  # a low-detail image; high-detail ones cost more and are corrected later


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
            prompt = self._prompt(body)
            return prompt + completion * (body.n or 1)
        return self._inputs(body.input)  # type: ignore[union-attr]

    def _prompt(self, body: ChatRequest) -> int:
        count = self.count
        total = 0
        for message in body.messages:
            total += _MESSAGE_OVERHEAD
            if type(message) is dict or isinstance(message, Mapping):
                content, calls = message.get("content"), message.get("tool_calls")
            else:
                content = getattr(message, "content", None)
                calls = getattr(message, "tool_calls", None)
            if type(content) is str:
                total += count(content)
            elif content:
                total += self._parts(content)
            if calls:
                total += count(_encode_json(calls).decode())
        if body.tools:
            total += count(_encode_json(body.tools).decode())
        return total

    def _parts(self, parts: Iterable[Any]) -> int:
        total = 0
        for part in parts:
            text = part.get("text") if isinstance(part, Mapping) else getattr(part, "text", None)
            total += self.count(text) if isinstance(text, str) else _IMAGE_TOKENS
        return total

    def _inputs(self, inputs: Any) -> int:
        if type(inputs) is str:
            return self.count(inputs)
        total = 0
        for item in inputs:
            if type(item) is str:
                total += self.count(item)
            elif type(item) is int:
                total += 1  # already a token id
            else:
                total += len(item)  # a list of token ids
        return total


class TiktokenEstimator(CharEstimator):
    """Exact OpenAI token counts with ``tiktoken`` (``pip install tiktoken``).

    The encoding is loaded in a background thread on first use (tiktoken may need to
    download it); until it is ready, or if it cannot be loaded, texts are counted
    like ``CharEstimator`` does.
    """

    def __init__(self, *, encoding: str = "o200k_base", completion_tokens: int = 256) -> None:
        super().__init__(completion_tokens=completion_tokens)
        self.encoding = encoding
        self._encode: Callable[[str], list[int]] | None = None
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
        try:
            import tiktoken

            self._encode = tiktoken.get_encoding(self.encoding).encode_ordinary
        except Exception as exc:  # no network, unknown encoding...: keep counting characters
            _log.warning(
                "tiktoken encoding %r unavailable (%s); estimating by characters",
                self.encoding,
                type(exc).__name__,
            )


def default_estimator() -> CharEstimator:
    """``TiktokenEstimator`` when tiktoken is installed, else ``CharEstimator``."""
    if importlib.util.find_spec("tiktoken") is not None:
        return TiktokenEstimator()
    return CharEstimator()
