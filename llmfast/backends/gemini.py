"""The Google Gemini backend: ``generateContent``, ``streamGenerateContent?alt=sse``,
``embedContent`` and ``batchEmbedContents`` (Gemini Developer API, ``v1beta``).

Messages become ``contents`` with ``parts`` (system messages ``systemInstruction``,
tool calls ``functionCall``, tool results ``functionResponse``), tools become
``functionDeclarations`` and sampling parameters ``generationConfig``. The key goes in
the ``x-goog-api-key`` header. See ``docs/backends/gemini.md``.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Mapping
from typing import Any

import msgspec

from llmfast.backends._convert import (
    ENCODE,
    check_unsupported,
    content_parts,
    data_url,
    merge_extra,
    parse_arguments,
    text_of,
    to_messages,
    to_tools,
    tool_names_by_id,
)
from llmfast.backends._count import gemini_count, gemini_count_body, post_count
from llmfast.backends._gemini_wire import (
    PROVIDER,
    GeminiStreamParser,
    completion_from,
    gemini_error,
)
from llmfast.backends._http import decode, url
from llmfast.backends._respond import JSONBackend
from llmfast.errors import APIStatusError, ConfigurationError, UnsupportedParameterError
from llmfast.pool import USER_AGENT
from llmfast.transport import Request
from llmfast.types import (
    AssistantMessage,
    ChatCompletion,
    ChatRequest,
    DeveloperMessage,
    Embedding,
    EmbeddingRequest,
    EmbeddingResponse,
    ImagePart,
    SystemMessage,
    TextPart,
    ToolMessage,
)

__all__ = ["DEFAULT_BASE_URL", "GeminiBackend"]

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
THINKING_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}
"""``reasoning_effort`` → ``thinkingConfig.thinkingBudget``."""

_UNSUPPORTED = ("logprobs", "top_logprobs", "parallel_tool_calls", "user")
_CONFIG = (  # ChatRequest field → generationConfig key
    ("temperature", "temperature"),
    ("top_p", "topP"),
    ("seed", "seed"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
)
_MODES = {"auto": "AUTO", "required": "ANY", "none": "NONE"}


class _Values(msgspec.Struct):
    values: list[float]


class _Embedded(msgspec.Struct):
    embedding: _Values


class _BatchEmbedded(msgspec.Struct):
    embeddings: list[_Values]


_decode_embedding = msgspec.json.Decoder(_Embedded).decode
_decode_batch = msgspec.json.Decoder(_BatchEmbedded).decode


class GeminiBackend(JSONBackend):
    """Backend for the Gemini Developer API.

    Args:
        base_url: the API root with its version (default
            ``https://generativelanguage.googleapis.com/v1beta``).
        api_key: sent as ``x-goog-api-key`` (default ``$GEMINI_API_KEY``, then
            ``$GOOGLE_API_KEY``); never shown.
        model: the default model for calls that name none (``models/`` prefix optional).
        headers: extra headers for every request.
    """

    kind = PROVIDER

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if api_key is None:
            api_key = os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")
        auth = {"x-goog-api-key": api_key} if api_key else {}
        client = {"x-goog-api-client": USER_AGENT, **(headers or {})}
        super().__init__(base_url=base_url, model=model, headers=client, auth=auth)
        self._urls: dict[tuple[str, str], Any] = {}

    def _url(self, model: str, method: str) -> Any:
        """``{base}/models/{model}:{method}``, parsed once per model and method."""
        target = self._urls.get((model, method))
        if target is None:
            name = model.removeprefix("models/")
            target = self._urls[model, method] = url(f"{self.base_url}/models/{name}:{method}")
        return target

    def chat_call(self, body: ChatRequest, stream: bool) -> tuple[Any, bytes]:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return self._url(body.model, method), ENCODE(self.wire_body(body))

    def wire_body(self, body: ChatRequest) -> dict[str, Any]:
        """The ``generateContent`` body for ``body``."""
        check_unsupported(body, PROVIDER, _UNSUPPORTED)
        system, contents = _contents(body)
        wire: dict[str, Any] = {"contents": contents}
        if system:
            wire["systemInstruction"] = {"parts": [{"text": text} for text in system]}
        if body.tools:
            wire["tools"] = [{"functionDeclarations": _declarations(body.tools)}]
        if body.tool_choice is not None:
            wire["toolConfig"] = {"functionCallingConfig": _tool_choice(body.tool_choice)}
        config = _generation_config(body)
        if config:
            wire["generationConfig"] = config
        return merge_extra(wire, body.extra_body, nested=("generationConfig",))

    async def count_tokens(self, request: Request, /) -> int:
        """The input tokens of ``request`` (a chat), by ``models/{model}:countTokens``."""
        body: ChatRequest = request.body  # type: ignore[assignment]
        data = ENCODE(gemini_count_body(body.model, self.wire_body(body)))
        return await post_count(
            self, request, self._url(body.model, "countTokens"), data, gemini_count
        )

    def embed_call(self, body: EmbeddingRequest) -> tuple[Any, bytes]:
        if body.encoding_format == "base64":
            raise UnsupportedParameterError("encoding_format", PROVIDER, "only floats")
        if body.user is not None:
            raise UnsupportedParameterError("user", PROVIDER)
        inputs = body.input
        extra = dict(body.extra_body or {})
        if isinstance(inputs, str):
            one = _embed_request(inputs, body.dimensions, extra)
            return self._url(body.model, "embedContent"), ENCODE(one)
        texts = [x for x in inputs if isinstance(x, str)]
        if len(texts) != len(inputs):
            raise UnsupportedParameterError("input", PROVIDER, "token ids are not accepted")
        name = "models/" + body.model.removeprefix("models/")
        requests = [{"model": name, **_embed_request(t, body.dimensions, extra)} for t in texts]
        return self._url(body.model, "batchEmbedContents"), ENCODE({"requests": requests})

    def decode_chat(self, raw: bytes) -> ChatCompletion:
        return completion_from(raw)

    def decode_embeddings(self, raw: bytes, body: EmbeddingRequest) -> EmbeddingResponse:
        if isinstance(body.input, str):
            one: _Embedded = decode(_decode_embedding, raw, "Gemini embedding")
            vectors = [one.embedding.values]
        else:
            batch: _BatchEmbedded = decode(_decode_batch, raw, "Gemini embeddings")
            vectors = [item.values for item in batch.embeddings]
        data = [Embedding(vector, index) for index, vector in enumerate(vectors)]
        return EmbeddingResponse(data=data, model=body.model)

    def stream_parser(self) -> GeminiStreamParser:
        return GeminiStreamParser(self.pool.config.max_event_bytes)

    def status_error(self, status: int, body: Any, headers: Mapping[str, str]) -> APIStatusError:
        return gemini_error(status, body, headers)


def _embed_request(text: str, dimensions: int | None, extra: Mapping[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = {"content": {"parts": [{"text": text}]}}
    if dimensions is not None:
        request["outputDimensionality"] = dimensions
    return merge_extra(request, extra)


def _contents(body: ChatRequest) -> tuple[list[str], list[dict[str, Any]]]:
    """``systemInstruction`` texts and ``contents`` (consecutive same-role turns merged)."""
    messages = to_messages(body.messages)
    names = tool_names_by_id(messages)
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    for message in messages:
        kind = type(message)
        if kind is SystemMessage or kind is DeveloperMessage:
            system.append(text_of(message.content))
            continue
        if kind is AssistantMessage:
            role, parts = "model", _model_parts(message)  # type: ignore[arg-type]
        elif kind is ToolMessage:
            role, parts = "user", [_function_response(message, names)]  # type: ignore[arg-type]
        else:
            role = "user"
            parts = [_part(p) for p in content_parts(message.content)]  # type: ignore[arg-type]
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return system, contents


def _part(part: TextPart | ImagePart) -> dict[str, Any]:
    if type(part) is TextPart:
        return {"text": part.text}
    assert isinstance(part, ImagePart)
    link = part.image_url.url
    inline = data_url(link)
    if inline is not None:
        return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
    file: dict[str, Any] = {"fileUri": link}
    guessed = mimetypes.guess_type(link)[0]
    if guessed is not None:
        file["mimeType"] = guessed
    return {"fileData": file}


def _model_parts(message: AssistantMessage) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    text = text_of(message.content)
    if text:
        parts.append({"text": text})
    for call in message.tool_calls or ():
        args = parse_arguments(call.function.arguments, PROVIDER)
        parts.append({"functionCall": {"name": call.function.name, "args": args}})
    return parts


def _function_response(message: ToolMessage, names: Mapping[str, str]) -> dict[str, Any]:
    name = names.get(message.tool_call_id)
    if name is None:
        raise ConfigurationError(
            f"gemini needs the function name of tool result {message.tool_call_id!r}: "
            "send the assistant message with its tool_calls first"
        )
    text = text_of(message.content)
    try:
        result = msgspec.json.decode(text)
    except msgspec.DecodeError:
        result = None
    response = result if isinstance(result, dict) else {"content": text}
    return {"functionResponse": {"name": name, "response": response}}


def _declarations(tools: Any) -> list[dict[str, Any]]:
    out = []
    for tool in to_tools(tools):
        function = tool.function
        spec: dict[str, Any] = {"name": function.name}
        if function.description is not None:
            spec["description"] = function.description
        if function.parameters is not None:
            spec["parametersJsonSchema"] = function.parameters
        out.append(spec)
    return out


def _tool_choice(choice: Any) -> dict[str, Any]:
    if isinstance(choice, str) and choice in _MODES:
        return {"mode": _MODES[choice]}
    if isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        return {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}
    raise UnsupportedParameterError("tool_choice", PROVIDER, f"unknown value {choice!r}")


def _generation_config(body: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for field, key in _CONFIG:
        value = getattr(body, field)
        if value is not None:
            config[key] = value
    max_tokens = body.max_tokens or body.max_completion_tokens
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    if body.stop is not None:
        config["stopSequences"] = [body.stop] if isinstance(body.stop, str) else body.stop
    if body.n is not None:
        config["candidateCount"] = body.n
    if body.response_format is not None:
        kind = body.response_format.get("type")
        if kind == "json_object":
            config["responseMimeType"] = "application/json"
        elif kind == "json_schema":
            schema = body.response_format.get("json_schema") or {}
            config["responseMimeType"] = "application/json"
            if "schema" in schema:
                config["responseJsonSchema"] = schema["schema"]
        elif kind != "text":
            raise UnsupportedParameterError("response_format", PROVIDER, f"type {kind!r}")
    effort = body.reasoning_effort
    if effort is not None:
        budget = THINKING_BUDGETS.get(effort)
        if budget is None:
            raise UnsupportedParameterError(
                "reasoning_effort", PROVIDER, f"{effort!r} is not one of {list(THINKING_BUDGETS)}"
            )
        config["thinkingConfig"] = {"thinkingBudget": budget, "includeThoughts": budget > 0}
    return config
