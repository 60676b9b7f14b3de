"""The Ollama native backend: ``POST /api/chat`` (NDJSON streams) and ``POST /api/embed``.

Sampling parameters become ``options`` (``max_tokens`` → ``num_predict``), images are
sent as base64, tool results name their function, ``response_format`` becomes
``format`` and ``reasoning_effort`` becomes ``think``. Streams are read through the
I/O-free [`NDJSONDecoder`][llmfast.NDJSONDecoder]. See ``docs/backends/ollama.md``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import msgspec

from llmfast.backends._convert import (
    ENCODE,
    check_unsupported,
    data_url,
    merge_extra,
    parse_arguments,
    text_of,
    to_messages,
    to_tools,
    tool_names_by_id,
)
from llmfast.backends._http import JSONBackend, decode, url
from llmfast.backends._ollama_wire import PROVIDER, OllamaStreamParser, completion_from
from llmfast.errors import UnsupportedParameterError
from llmfast.types import (
    AssistantMessage,
    ChatCompletion,
    ChatRequest,
    DeveloperMessage,
    Embedding,
    EmbeddingRequest,
    EmbeddingResponse,
    EmbeddingUsage,
    ImagePart,
    SystemMessage,
    ToolMessage,
    UserMessage,
)

__all__ = ["DEFAULT_BASE_URL", "OllamaBackend", "ollama_host"]

DEFAULT_BASE_URL = "http://localhost:11434"

_UNSUPPORTED = ("n", "logprobs", "top_logprobs", "parallel_tool_calls", "user")
_ROLES: dict[type, str] = {
    SystemMessage: "system",
    DeveloperMessage: "system",
    UserMessage: "user",
    AssistantMessage: "assistant",
    ToolMessage: "tool",
}
_OPTIONS = (  # ChatRequest field → Ollama option
    ("temperature", "temperature"),
    ("top_p", "top_p"),
    ("seed", "seed"),
    ("presence_penalty", "presence_penalty"),
    ("frequency_penalty", "frequency_penalty"),
)


class _Embeddings(msgspec.Struct):
    embeddings: list[list[float]]
    model: str = ""
    prompt_eval_count: int | None = None


_decode_embeddings = msgspec.json.Decoder(_Embeddings).decode


def ollama_host(value: str | None = None) -> str:
    """The base URL from ``value`` or ``$OLLAMA_HOST`` (``host:port`` gets ``http://``)."""
    host = value or os.environ.get("OLLAMA_HOST") or DEFAULT_BASE_URL
    if "://" not in host:
        host = "http://" + host
    return host


class OllamaBackend(JSONBackend):
    """Backend for Ollama's native API (``/api/chat``, ``/api/embed``).

    Args:
        base_url: the server root, without ``/api`` (default ``$OLLAMA_HOST`` or
            ``http://localhost:11434``).
        model: the default model for calls that name none.
        headers: extra headers for every request (e.g. for a proxy in front of Ollama).
        keep_alive: how long the model stays loaded after a call (``"5m"``, seconds, or
            ``-1`` for ever); ``None``: the server's default.
        options: default Ollama ``options`` for every call (``num_ctx``, ``top_k``...).
    """

    kind = PROVIDER

    def __init__(
        self,
        base_url: str | None = None,
        *,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        keep_alive: str | float | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(base_url=ollama_host(base_url), model=model, headers=headers, auth={})
        self.keep_alive = keep_alive
        self.options = dict(options or {})
        self._chat_url = url(self.base_url + "/api/chat")
        self._embed_url = url(self.base_url + "/api/embed")

    def warmup_url(self) -> str:
        return self.base_url + "/api/version"

    def chat_call(self, body: ChatRequest, stream: bool) -> tuple[Any, bytes]:
        wire = self.wire_body(body)
        wire["stream"] = stream
        return self._chat_url, ENCODE(wire)

    def wire_body(self, body: ChatRequest) -> dict[str, Any]:
        """The ``/api/chat`` body for ``body`` (without ``stream``)."""
        check_unsupported(body, PROVIDER, _UNSUPPORTED)
        wire: dict[str, Any] = {"model": body.model, "messages": _messages(body)}
        if body.tools:
            wire["tools"] = [
                {"type": "function", "function": msgspec.to_builtins(tool.function)}
                for tool in to_tools(body.tools)
            ]
        if body.tool_choice is not None and body.tool_choice != "auto":
            raise UnsupportedParameterError("tool_choice", PROVIDER, "only 'auto' is available")
        options = dict(self.options)
        for field, option in _OPTIONS:
            value = getattr(body, field)
            if value is not None:
                options[option] = value
        max_tokens = body.max_tokens or body.max_completion_tokens
        if max_tokens is not None:
            options["num_predict"] = max_tokens
        if body.stop is not None:
            options["stop"] = [body.stop] if isinstance(body.stop, str) else body.stop
        if options:
            wire["options"] = options
        if body.response_format is not None:
            fmt = _format(body.response_format)
            if fmt is not None:
                wire["format"] = fmt
        if body.reasoning_effort is not None:
            wire["think"] = False if body.reasoning_effort == "none" else body.reasoning_effort
        if self.keep_alive is not None:
            wire["keep_alive"] = self.keep_alive
        return merge_extra(wire, body.extra_body, nested=("options",))

    def embed_call(self, body: EmbeddingRequest) -> tuple[Any, bytes]:
        if body.encoding_format == "base64":
            raise UnsupportedParameterError("encoding_format", PROVIDER, "only floats")
        if body.user is not None:
            raise UnsupportedParameterError("user", PROVIDER)
        inputs = body.input
        if not isinstance(inputs, str) and any(not isinstance(x, str) for x in inputs):
            raise UnsupportedParameterError("input", PROVIDER, "token ids are not accepted")
        wire: dict[str, Any] = {"model": body.model, "input": inputs}
        if body.dimensions is not None:
            wire["dimensions"] = body.dimensions
        if self.options:
            wire["options"] = dict(self.options)
        if self.keep_alive is not None:
            wire["keep_alive"] = self.keep_alive
        return self._embed_url, ENCODE(merge_extra(wire, body.extra_body, nested=("options",)))

    def decode_chat(self, raw: bytes) -> ChatCompletion:
        return completion_from(raw)

    def decode_embeddings(self, raw: bytes, body: EmbeddingRequest) -> EmbeddingResponse:
        result: _Embeddings = decode(_decode_embeddings, raw, "Ollama embeddings")
        tokens = result.prompt_eval_count
        return EmbeddingResponse(
            data=[Embedding(vector, index) for index, vector in enumerate(result.embeddings)],
            model=result.model or body.model,
            usage=None if tokens is None else EmbeddingUsage(tokens, tokens),
        )

    def stream_parser(self) -> OllamaStreamParser:
        return OllamaStreamParser(self.pool.config.max_event_bytes)


def _messages(body: ChatRequest) -> list[dict[str, Any]]:
    messages = to_messages(body.messages)
    names = tool_names_by_id(messages)
    out: list[dict[str, Any]] = []
    for message in messages:
        kind = type(message)
        wire: dict[str, Any] = {"role": _ROLES[kind], "content": text_of(message.content)}
        if kind is UserMessage and not isinstance(message.content, str):
            images = [_image(p) for p in message.content if type(p) is ImagePart]  # type: ignore[union-attr]
            if images:
                wire["images"] = images
        elif kind is AssistantMessage and message.tool_calls:  # type: ignore[union-attr]
            wire["tool_calls"] = [
                {
                    "function": {
                        "name": call.function.name,
                        "arguments": parse_arguments(call.function.arguments, PROVIDER),
                    }
                }
                for call in message.tool_calls  # type: ignore[union-attr]
            ]
        elif kind is ToolMessage:
            name = names.get(message.tool_call_id)  # type: ignore[union-attr]
            if name is not None:
                wire["tool_name"] = name
        out.append(wire)
    return out


def _image(part: ImagePart) -> str:
    inline = data_url(part.image_url.url)
    if inline is None:
        raise UnsupportedParameterError(
            "image_url", PROVIDER, "images must be base64 data: URLs, not links"
        )
    return inline[1]


def _format(response_format: Mapping[str, Any]) -> Any:
    kind = response_format.get("type")
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        schema = response_format.get("json_schema")
        if isinstance(schema, Mapping) and "schema" in schema:
            return schema["schema"]
    if kind == "text":
        return None
    raise UnsupportedParameterError("response_format", PROVIDER, f"unknown type {kind!r}")
