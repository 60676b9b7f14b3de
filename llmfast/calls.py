"""How the arguments of ``chat`` and ``stream`` become a ``ChatRequest``.

Also where habits from the ``openai`` SDK are met: ``messages=`` is the keyword form
of the prompt, ``stream=True`` points to ``client.stream(...)``, and a request with no
messages is refused before it is sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from llmfast.errors import ConfigurationError
from llmfast.types import ChatRequest, MessageLike, ToolLike

__all__ = ["ChatParams", "Prompt", "chat_request", "resolve_model"]


class ChatParams(TypedDict, total=False):
    """Optional chat parameters accepted as keywords by ``chat`` and ``stream``."""

    temperature: float
    top_p: float
    max_tokens: int
    max_completion_tokens: int
    stop: str | list[str]
    seed: int
    n: int
    presence_penalty: float
    frequency_penalty: float
    logprobs: bool
    top_logprobs: int
    tools: Sequence[ToolLike]
    tool_choice: str | Mapping[str, Any]
    parallel_tool_calls: bool
    response_format: Mapping[str, Any]
    reasoning_effort: str
    user: str
    prompt_cache_key: str
    extra_body: Mapping[str, Any]


Prompt = str | Sequence[MessageLike] | ChatRequest
"""A prompt: a user message as a string, a list of messages (typed or dicts), or a
whole ``ChatRequest``."""

_NO_MESSAGES = "no messages: a chat request needs at least one message"


def resolve_model(model: str | None, default: str | None) -> str:
    """``model``, else the client's default, else a ``ConfigurationError``."""
    chosen = model or default
    if not chosen:
        raise ConfigurationError(
            "no model given: pass model=... to the call or to Client(...), or set LLMFAST_MODEL"
        )
    return chosen


def chat_request(
    prompt: Prompt | None,
    messages: Sequence[MessageLike] | None,
    model: str | None,
    default_model: str | None,
    params: Mapping[str, Any],
    call: str,
) -> ChatRequest:
    """The request for ``client.<call>(prompt, model=..., **params)`` (or with
    ``messages=`` instead of ``prompt``)."""
    if messages is not None:
        if prompt is not None:
            raise TypeError(f"{call}() takes a prompt or messages=, not both")
        prompt = messages
    elif prompt is None:
        raise TypeError(f"{call}() needs a prompt: a string, a list of messages, or messages=")
    if type(prompt) is ChatRequest:
        if params or model:
            raise ConfigurationError(
                "pass parameters inside the ChatRequest or as keywords, not both"
            )
        if not prompt.messages:
            raise ConfigurationError(_NO_MESSAGES)
        return prompt
    if type(prompt) is str:
        listed: Sequence[MessageLike] = [{"role": "user", "content": prompt}]
    else:
        listed = prompt  # type: ignore[assignment]
        if not listed:
            raise ConfigurationError(_NO_MESSAGES)
    try:
        return ChatRequest(model=resolve_model(model, default_model), messages=listed, **params)
    except TypeError as exc:
        if "stream" in params:
            raise _stream_keyword(call, params["stream"]) from None
        raise ConfigurationError(str(exc)) from exc


def _stream_keyword(call: str, value: object) -> TypeError:
    if call == "stream":
        return TypeError("stream() always streams: drop the stream= keyword")
    if not value:
        return TypeError("chat() never streams: drop the stream= keyword")
    return TypeError(
        "chat() takes no stream= keyword: to stream, use "
        "`async with client.stream(...) as stream: async for chunk in stream: ...`"
        " (with a SyncClient: `with client.stream(...) as stream: for chunk in stream: ...`)"
    )
