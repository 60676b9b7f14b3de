"""The Anthropic Messages backend: ``POST /v1/messages``, whole or streamed (SSE).

Requests are mapped from the common ``ChatRequest`` (system messages become ``system``,
tool results become ``tool_result`` blocks, tools and tool choice are translated) and
responses to the common completion and chunk types: ``input_json_delta`` fragments
become tool-call argument fragments, ``thinking_delta`` becomes ``reasoning_content``,
stop reasons are mapped (the original kept), cache tokens land in ``Usage``.
See ``docs/backends/anthropic.md``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from llmfast.backends._anthropic_wire import PROVIDER, AnthropicStreamParser, completion_from
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
)
from llmfast.backends._count import anthropic_count, count_body, post_count
from llmfast.backends._http import url
from llmfast.backends._prompt_cache import (
    anthropic_system,
    control,
    mark_last,
    min_cacheable_tokens,
    place_breakpoints,
)
from llmfast.backends._respond import JSONBackend
from llmfast.errors import (
    APIStatusError,
    UnsupportedParameterError,
    error_for_status,
)
from llmfast.transport import Request
from llmfast.types import (
    AssistantMessage,
    ChatCompletion,
    ChatRequest,
    DeveloperMessage,
    EmbeddingRequest,
    EmbeddingResponse,
    ImagePart,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
)

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_VERSION", "AnthropicBackend"]

DEFAULT_BASE_URL = "https://api.anthropic.com/v1"
DEFAULT_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096}
"""``reasoning_effort`` → extended-thinking ``budget_tokens``."""

_UNSUPPORTED = (
    "n",
    "seed",
    "logprobs",
    "top_logprobs",
    "presence_penalty",
    "frequency_penalty",
    "response_format",
)
_STREAM_SUFFIX = b',"stream":true}'


class AnthropicBackend(JSONBackend):
    """Backend for Anthropic's Messages API.

    Args:
        base_url: the API root including the version (default ``https://api.anthropic.com/v1``).
        api_key: sent as ``x-api-key`` (default ``$ANTHROPIC_API_KEY``); never shown.
        model: the default model for calls that name none.
        headers: extra headers for every request (e.g. ``anthropic-beta``).
        version: the ``anthropic-version`` header.
        default_max_tokens: ``max_tokens`` for requests that set neither ``max_tokens``
            nor ``max_completion_tokens`` (the API requires one).
        prompt_cache: ``"auto"`` puts prompt-cache breakpoints on the longest stable
            prefix of every request (see ``docs/tokens.md``); ``None`` sends only the
            ``cache=`` marks the request carries.
        prompt_cache_ttl: the lifetime of the automatic breakpoints (``"5m"`` or
            ``"1h"``; default: the API's, five minutes).
    """

    kind = PROVIDER
    request_id_header = "request-id"

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        version: str = DEFAULT_VERSION,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        prompt_cache: Literal["auto"] | None = None,
        prompt_cache_ttl: Literal["5m", "1h"] | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("ANTHROPIC_API_KEY")
        auth = {"anthropic-version": version}
        if key:
            auth["x-api-key"] = key
        super().__init__(base_url=base_url, model=model, headers=headers, auth=auth)
        if default_max_tokens < 1:
            raise ValueError("default_max_tokens must be >= 1")
        self.default_max_tokens = default_max_tokens
        if prompt_cache not in (None, "auto"):
            raise ValueError(f"prompt_cache must be 'auto' or None, not {prompt_cache!r}")
        self.prompt_cache = prompt_cache
        self._auto_mark = control(prompt_cache_ttl or True)
        self._messages_url = url(self.base_url + "/messages")
        self._count_url = url(self.base_url + "/messages/count_tokens")

    def chat_call(self, body: ChatRequest, stream: bool) -> tuple[Any, bytes]:
        data = ENCODE(self.wire_body(body))
        return self._messages_url, data[:-1] + _STREAM_SUFFIX if stream else data

    def wire_body(self, body: ChatRequest) -> dict[str, Any]:
        """The Messages API body for ``body`` (without ``stream``)."""
        check_unsupported(body, PROVIDER, _UNSUPPORTED)
        system, messages = _messages(body)
        wire: dict[str, Any] = {"model": body.model, "messages": messages}
        if system is not None:
            wire["system"] = system
        max_tokens = body.max_tokens or body.max_completion_tokens
        effort = body.reasoning_effort
        if effort is not None and effort != "none":
            budget = THINKING_BUDGETS.get(effort)
            if budget is None:
                raise UnsupportedParameterError(
                    "reasoning_effort",
                    PROVIDER,
                    f"{effort!r} is not one of {list(THINKING_BUDGETS)}",
                )
            wire["thinking"] = {"type": "enabled", "budget_tokens": budget}
            if max_tokens is None:
                max_tokens = budget + self.default_max_tokens
        wire["max_tokens"] = max_tokens or self.default_max_tokens
        if body.temperature is not None:
            wire["temperature"] = body.temperature
        if body.top_p is not None:
            wire["top_p"] = body.top_p
        if body.stop is not None:
            wire["stop_sequences"] = [body.stop] if isinstance(body.stop, str) else body.stop
        if body.tools:
            wire["tools"] = _tools(body.tools)
        choice = _tool_choice(body.tool_choice, body.parallel_tool_calls)
        if choice is not None:
            wire["tool_choice"] = choice
        if body.user is not None:
            wire["metadata"] = {"user_id": body.user}
        wire = merge_extra(wire, body.extra_body)
        if self.prompt_cache == "auto":
            min_tokens = min_cacheable_tokens(body.model)
            place_breakpoints(wire, mark=self._auto_mark, min_tokens=min_tokens)
        return wire

    async def count_tokens(self, request: Request, /) -> int:
        """The input tokens of ``request`` (a chat), by ``POST /v1/messages/count_tokens``."""
        body = count_body(self.wire_body(request.body))  # type: ignore[arg-type]
        return await post_count(self, request, self._count_url, ENCODE(body), anthropic_count)

    def embed_call(self, body: EmbeddingRequest) -> tuple[Any, bytes]:
        raise UnsupportedParameterError(
            "embeddings", PROVIDER, "the Messages API has no embeddings endpoint"
        )

    def decode_chat(self, raw: bytes) -> ChatCompletion:
        return completion_from(raw)

    def decode_embeddings(self, raw: bytes, body: EmbeddingRequest) -> EmbeddingResponse:
        raise AssertionError("unreachable: embed_call raises")  # pragma: no cover

    def stream_parser(self) -> AnthropicStreamParser:
        return AnthropicStreamParser(self.pool.config.max_event_bytes)

    def status_error(self, status: int, body: Any, headers: Mapping[str, str]) -> APIStatusError:
        error = error_for_status(status, body, headers, request_id_header="request-id")
        if error.request_id is None and isinstance(body, dict):
            request_id = body.get("request_id")
            error.request_id = request_id if isinstance(request_id, str) else None
        return error


# -- request mapping ---------------------------------------------------------------------


def _messages(body: ChatRequest) -> tuple[str | list[Any] | None, list[dict[str, Any]]]:
    """``system`` and the alternating ``messages`` (consecutive same-role turns merged)."""
    system: list[Any] = []
    out: list[dict[str, Any]] = []
    for message in to_messages(body.messages):
        kind = type(message)
        if kind is SystemMessage or kind is DeveloperMessage:
            system.append(message)
            continue
        if kind is UserMessage:
            role = "user"
            blocks = [_user_block(part) for part in content_parts(message.content)]  # type: ignore[arg-type]
        elif kind is ToolMessage:
            role = "user"
            blocks = [
                {
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id,  # type: ignore[union-attr]
                    "content": text_of(message.content),
                }
            ]
        else:
            assert isinstance(message, AssistantMessage)
            role = "assistant"
            blocks = _assistant_blocks(message)
        if message.cache is not None:
            mark_last(blocks, message.cache)
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    for turn in out:
        content = turn["content"]
        if len(content) == 1 and content[0]["type"] == "text" and "cache_control" not in content[0]:
            turn["content"] = content[0]["text"]
    return anthropic_system(system), out


def _user_block(part: TextPart | ImagePart) -> dict[str, Any]:
    block = _plain_block(part)
    wire = None if part.cache is None else control(part.cache)
    if wire is not None:
        block["cache_control"] = wire
    return block


def _plain_block(part: TextPart | ImagePart) -> dict[str, Any]:
    if type(part) is TextPart:
        return {"type": "text", "text": part.text}
    assert isinstance(part, ImagePart)
    inline = data_url(part.image_url.url)
    if inline is None:
        return {"type": "image", "source": {"type": "url", "url": part.image_url.url}}
    media_type, data = inline
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _assistant_blocks(message: AssistantMessage) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    text = text_of(message.content)
    if text:
        blocks.append({"type": "text", "text": text})
    blocks.extend(
        {
            "type": "tool_use",
            "id": call.id,
            "name": call.function.name,
            "input": parse_arguments(call.function.arguments, PROVIDER),
        }
        for call in message.tool_calls or ()
    )
    return blocks


def _tools(tools: Any) -> list[Any]:
    """OpenAI-style function tools translated; native Anthropic tool dicts passed as given."""
    out: list[Any] = []
    for tool in tools:
        if isinstance(tool, Mapping) and "function" not in tool:
            out.append(tool)  # e.g. {"type": "web_search_20250305", "name": "web_search"}
            continue
        typed = to_tools([tool])[0]
        function = typed.function
        spec: dict[str, Any] = {"name": function.name}
        if function.description is not None:
            spec["description"] = function.description
        spec["input_schema"] = function.parameters or {"type": "object", "properties": {}}
        wire = None if typed.cache is None else control(typed.cache)
        if wire is not None:
            spec["cache_control"] = wire
        out.append(spec)
    return out


def _tool_choice(choice: Any, parallel: bool | None) -> dict[str, Any] | None:
    if choice is None:
        wire: dict[str, Any] | None = None if parallel is not False else {"type": "auto"}
    elif choice == "auto":
        wire = {"type": "auto"}
    elif choice == "required":
        wire = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    elif isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        wire = {"type": "tool", "name": choice["function"]["name"]}
    elif isinstance(choice, Mapping):
        wire = dict(choice)  # already in Anthropic's shape
    else:
        raise UnsupportedParameterError("tool_choice", PROVIDER, f"unknown value {choice!r}")
    if parallel is False and wire is not None:
        wire["disable_parallel_tool_use"] = True
    return wire
