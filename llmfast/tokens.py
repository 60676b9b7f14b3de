"""Counting tokens: the one module behind ``client.count_tokens`` and the rate
limiter's estimates (``llmfast.limits.estimate``).

Three ways, and a [`TokenCount`][llmfast.TokenCount] says which one counted:

- ``"exact"``: the provider's own endpoint, where the backend offers one (a backend
  method ``count_tokens(request) -> int``: Anthropic's ``/v1/messages/count_tokens``,
  Gemini's ``models/{model}:countTokens``);
- ``"tiktoken"``: OpenAI's tokenizer for OpenAI models, when ``tiktoken`` is installed
  (``pip install 'llmfast[tokens]'``) and its encoding can be loaded (tiktoken downloads
  it once, then caches it);
- ``"estimate"``: about four characters a token, an image 85 tokens.

The prompt is walked the same way for all three (`prompt_tokens`): message texts,
a fixed overhead per message (role and separators), tool-call arguments, tool
definitions. See ``docs/tokens.md``.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, Protocol, runtime_checkable

import msgspec

from llmfast.errors import ConfigurationError
from llmfast.transport import Request
from llmfast.types import ChatRequest

__all__ = [
    "CountMethod",
    "TokenCount",
    "TokenCounter",
    "count_request",
    "encoder",
    "estimate_text",
    "input_tokens",
    "prompt_tokens",
    "tiktoken_encoding",
]

CountMethod = Literal["exact", "tiktoken", "estimate"]

MESSAGE_OVERHEAD = 4
"""Tokens per message for its role and separators (OpenAI's published rule: 3 + the role)."""
REPLY_PRIMING = 3
"""Tokens OpenAI adds to every prompt to prime the reply (``<|start|>assistant<|message|>``)."""
IMAGE_TOKENS = 85
"""An image, as estimated before sending (a low-detail image; usage corrects it)."""
CHARS_PER_TOKEN = 4.0

_encode_json = msgspec.json.Encoder().encode
_encoders: dict[str, Callable[[str], list[int]] | None] = {}
_encoders_lock = threading.Lock()
_by_model: dict[tuple[str, bool], Callable[[str], list[int]] | None] = {}
_UNKNOWN: Any = object()


class TokenCount(msgspec.Struct, frozen=True):
    """The result of [`Client.count_tokens`][llmfast.Client.count_tokens]."""

    tokens: int
    """The prompt's input tokens."""
    method: CountMethod
    """How they were counted: ``"exact"`` (the provider's endpoint), ``"tiktoken"``
    (OpenAI's tokenizer, locally) or ``"estimate"`` (by characters)."""
    model: str
    """The model counted for."""


@runtime_checkable
class TokenCounter(Protocol):
    """The optional backend capability: count a chat request's input tokens exactly,
    with the provider's endpoint (``request.body`` is a ``ChatRequest``)."""

    async def count_tokens(self, request: Request, /) -> int: ...


def estimate_text(text: str) -> int:
    """Tokens in ``text`` by characters (about four a token)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def prompt_tokens(
    body: ChatRequest, count: Callable[[str], int], per_message: int = MESSAGE_OVERHEAD
) -> int:
    """The prompt tokens of ``body`` with ``count`` counting each text: message
    contents and names (images as `IMAGE_TOKENS`), ``per_message`` for each message,
    tool-call arguments and tool definitions as their JSON."""
    total = 0
    for message in body.messages:
        total += per_message
        if type(message) is dict or isinstance(message, Mapping):
            content, calls = message.get("content"), message.get("tool_calls")
            name = message.get("name")
        else:
            content = getattr(message, "content", None)
            calls = getattr(message, "tool_calls", None)
            name = getattr(message, "name", None)
        if type(content) is str:
            total += count(content)
        elif content:
            total += _parts(content, count)
        if calls:
            total += count(_encode_json(calls).decode())
        if name:
            total += count(name) + 1
    if body.tools:
        total += count(_encode_json(body.tools).decode())
    return total


def _parts(parts: Iterable[Any], count: Callable[[str], int]) -> int:
    total = 0
    for part in parts:
        text = part.get("text") if isinstance(part, Mapping) else getattr(part, "text", None)
        total += count(text) if isinstance(text, str) else IMAGE_TOKENS
    return total


def input_tokens(inputs: Any, count: Callable[[str], int]) -> int:
    """The tokens of an embeddings ``input`` (texts counted, token ids taken as they are)."""
    if type(inputs) is str:
        return count(inputs)
    total = 0
    for item in inputs:
        if type(item) is str:
            total += count(item)
        elif type(item) is int:
            total += 1  # already a token id
        else:
            total += len(item)  # a list of token ids
    return total


# -- tiktoken ------------------------------------------------------------------------------


def tiktoken_encoding(model: str) -> str | None:
    """The tiktoken encoding of an OpenAI ``model`` (``o200k_base`` for ``gpt-4o``...),
    or ``None`` when tiktoken is not installed or does not know the model."""
    try:
        import tiktoken
    except ImportError:
        return None
    try:
        name: str = tiktoken.encoding_name_for_model(model.removeprefix("openai/"))
    except KeyError:
        return None
    return name


def encoder(name: str) -> Callable[[str], list[int]] | None:
    """tiktoken's ``encode_ordinary`` for encoding ``name``, loaded once per process and
    shared (this may download the encoding: call it off the event loop); ``None`` when
    tiktoken is missing or the encoding cannot be loaded (then it is not tried again)."""
    if name in _encoders:
        return _encoders[name]
    with _encoders_lock:
        if name not in _encoders:
            _encoders[name] = _load(name)
        return _encoders[name]


def loaded_encoder(name: str) -> Callable[[str], list[int]] | None:
    """The encoder if `encoder` has already loaded it (never loads: cheap on any path)."""
    return _encoders.get(name)


def _load(name: str) -> Callable[[str], list[int]] | None:
    try:
        import tiktoken

        encode: Callable[[str], list[int]] = tiktoken.get_encoding(name).encode_ordinary
    except Exception:  # not installed, no network and no cache, unknown encoding...
        return None
    return encode


def _model_encoder(model: str, forced: bool) -> Callable[[str], list[int]] | None:
    """The encoder of an OpenAI ``model`` (``forced``: ``o200k_base`` for a model
    tiktoken does not know), remembered per model. Imports and may download."""
    name = tiktoken_encoding(model)
    if name is None and forced:
        name = "o200k_base"  # asked for by name: the current OpenAI encoding
    found = None if name is None else encoder(name)
    _by_model[model, forced] = found
    return found


def forget_encoders() -> None:
    """Forget loaded (and failed) encodings, so the next use loads them again (tests)."""
    with _encoders_lock:
        _encoders.clear()
        _by_model.clear()


# -- client.count_tokens ---------------------------------------------------------------


async def count_request(
    backend: object,
    request: Request,
    method: CountMethod | Literal["auto"] = "auto",
) -> TokenCount:
    """Count ``request``'s prompt with ``method`` (see the module docstring); ``"auto"``
    takes the first of exact, tiktoken (OpenAI-compatible backends only) and estimate
    that is available. A method asked for by name and not available raises
    ``ConfigurationError``; the provider's errors are raised as a chat call's are."""
    body = request.body
    assert type(body) is ChatRequest
    model = body.model
    if method in ("auto", "exact"):
        if isinstance(backend, TokenCounter):
            return TokenCount(await backend.count_tokens(request), "exact", model)
        if method == "exact":
            kind = getattr(backend, "kind", type(backend).__name__)
            raise ConfigurationError(f"the {kind} backend has no token-counting endpoint")
    if method == "tiktoken" or (method == "auto" and getattr(backend, "kind", "") == "openai"):
        forced = method == "tiktoken"
        found = _by_model.get((model, forced), _UNKNOWN)
        if found is _UNKNOWN:  # tiktoken's import and the encoding's load: off the loop
            found = await asyncio.to_thread(_model_encoder, model, forced)
        encode: Callable[[str], list[int]] | None = found
        if encode is not None:
            tokens = prompt_tokens(body, lambda text: len(encode(text))) + REPLY_PRIMING
            return TokenCount(tokens, "tiktoken", model)
        if forced:
            raise ConfigurationError(
                "tiktoken is not installed (pip install 'llmfast[tokens]') or the "
                f"encoding of {model!r} could not be loaded"
            )
    elif method != "auto" and method != "estimate":
        raise ConfigurationError(f"unknown counting method {method!r}")
    return TokenCount(prompt_tokens(body, estimate_text) + REPLY_PRIMING, "estimate", model)
