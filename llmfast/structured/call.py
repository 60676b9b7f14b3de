"""Structured calls: ask for an output type, validate the reply, re-ask when it fails.

[structured_chat][llmfast.structured.call.structured_chat] is what
``client.chat(prompt, output=Invoice)`` runs. It picks how to ask per backend (the
``mode``), sends the call through the client's whole onion, decodes the reply with the
type's cached msgspec decoder and, when validation fails, re-asks with the error (its
path and message) up to ``max_attempts`` times or until a token or time budget is
spent. Every attempt's usage is summed on the result.

Modes:

- ``"native"``: the provider's own structured output: OpenAI's ``response_format``
  ``json_schema`` (strict when the schema allows it), Gemini's ``responseJsonSchema``,
  Ollama's ``format`` (the backends translate ``response_format``).
- ``"tool"``: a forced call of a tool whose parameters are the schema; the default
  for Anthropic, and for any backend with tool calling but no JSON mode.
- ``"prompted"``: the schema in the instructions and the first JSON value taken from
  the text, for servers with neither.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

import msgspec

from llmfast.errors import (
    OutputRefusedError,
    OutputTruncatedError,
    OutputValidationError,
)
from llmfast.structured.output import OutputParseError, OutputSpec, output_spec
from llmfast.structured.usage import add_usage
from llmfast.types import (
    AssistantMessage,
    ChatCompletion,
    ChatRequest,
    FunctionCall,
    FunctionDefinition,
    OutputAttempt,
    SystemMessage,
    Tool,
    ToolCall,
    ToolMessage,
    Usage,
    UserMessage,
)

if TYPE_CHECKING:
    from llmfast.client_calls import ClientCalls

__all__ = [
    "Asking",
    "Mode",
    "Output",
    "StructuredCompletion",
    "asking_for",
    "default_mode",
    "structured_chat",
]

T = TypeVar("T")
Mode = Literal["native", "tool", "prompted"]
"""How a structured call asks for its output (see the module)."""

_DEFAULT_MODES: dict[str, Mode] = {
    "openai": "native",
    "anthropic": "tool",
    "gemini": "native",
    "ollama": "native",
}
_raw_decoder = json.JSONDecoder()


class Output(Generic[T]):
    """An output type with the options of asking for it: ``output=Output(Invoice,
    mode="tool", max_attempts=5)`` (a bare type means the defaults).

    Args:
        type: the output type (see [output_spec][llmfast.structured.output.output_spec]).
        mode: ``"native"``, ``"tool"`` or ``"prompted"`` (default: per backend).
        max_attempts: replies to try before giving up (re-asks included).
        max_total_tokens: stop re-asking once the attempts used this many tokens.
    """

    __slots__ = ("max_attempts", "max_total_tokens", "mode", "spec")

    @overload
    def __init__(
        self: Output[T],
        type: type[T],
        *,
        mode: Mode | None = None,
        max_attempts: int = 3,
        max_total_tokens: int | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self: Output[Any],
        type: object,
        *,
        mode: Mode | None = None,
        max_attempts: int = 3,
        max_total_tokens: int | None = None,
    ) -> None: ...

    def __init__(
        self,
        type: Any,
        *,
        mode: Mode | None = None,
        max_attempts: int = 3,
        max_total_tokens: int | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if mode not in (None, "native", "tool", "prompted"):
            raise ValueError(f"unknown structured-output mode {mode!r}")
        self.spec: OutputSpec[T] = output_spec(type)
        self.mode = mode
        self.max_attempts = max_attempts
        self.max_total_tokens = max_total_tokens

    @classmethod
    def of(cls, output: Any) -> Output[Any]:
        """``output`` as an ``Output`` (a bare type gets the defaults)."""
        return output if isinstance(output, Output) else cls(output)

    def __repr__(self) -> str:
        return f"Output({self.spec.name!r}, mode={self.mode!r}, max_attempts={self.max_attempts})"


class StructuredCompletion(ChatCompletion, Generic[T], kw_only=True):
    """A completion with its decoded, validated ``output``.

    ``usage`` is the sum over every attempt of the call (re-asks and retried attempts
    included, so it equals ``total_usage``); ``attempts`` counts them.
    """

    output: T
    """The reply decoded into the requested type."""
    attempts: int = 1
    """How many replies it took (re-asks included)."""


def default_mode(backend_kind: str) -> Mode:
    """The mode a backend of ``backend_kind`` uses when none is given."""
    return _DEFAULT_MODES.get(backend_kind, "tool")


class Asking:
    """How one structured call asks, per mode: the extra parameters, how to read the
    reply, and how to re-ask."""

    def __init__(self, spec: OutputSpec[Any], mode: Mode, backend_kind: str) -> None:
        if mode == "native" and backend_kind == "anthropic":
            mode = "tool"  # Anthropic's native way is a forced tool call
        self.spec = spec
        self.mode = mode
        self.tool_name = spec.name
        strict_ok = backend_kind == "openai"
        if mode == "native":
            if strict_ok:
                self.params: dict[str, Any] = {"response_format": spec.response_format()}
            else:  # the other providers take full JSON Schema: send the original
                self.params = {
                    "response_format": {
                        "type": "json_schema",
                        "json_schema": {"name": spec.name, "schema": spec.schema},
                    }
                }
        elif mode == "tool":
            strict = spec.strict.strict and strict_ok
            schema = spec.strict.schema if strict else spec.schema
            self.tool = Tool(
                function=FunctionDefinition(
                    name=self.tool_name,
                    description="Respond by calling this function with the answer.",
                    parameters=schema,
                    strict=True if strict else None,
                )
            )
            self.params = {}
            if backend_kind != "ollama":  # Ollama can't force a tool; it is the only one
                choice = {"type": "function", "function": {"name": self.tool_name}}
                self.params["tool_choice"] = choice
        elif mode == "prompted":
            schema_text = msgspec.json.encode(spec.schema).decode()
            self.instruction = SystemMessage(
                content="Answer with one JSON value that matches this JSON Schema, and "
                f"nothing else (no prose, no code fence):\n{schema_text}"
            )
            self.params = {}
        else:
            raise ValueError(f"unknown structured-output mode {mode!r}")

    def request_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The call's parameters with this mode's added."""
        merged = {**params, **self.params}
        if self.mode == "tool":
            merged["tools"] = [*(params.get("tools") or ()), self.tool]
        return merged

    def messages(self, messages: list[Any]) -> list[Any]:
        """The messages of the first attempt."""
        if self.mode != "prompted":
            return messages
        return [self.instruction, *messages]

    def reply_text(self, reply: ChatCompletion, usage: Usage | None) -> tuple[str, str | None]:
        """The JSON text of ``reply`` (and the tool call's id in tool mode); raises
        the refusal and truncation errors."""
        if not reply.choices:
            raise OutputRefusedError("(an empty reply)", completion=reply, usage=usage)
        message = reply.choices[0].message
        finish = reply.choices[0].finish_reason
        if message.refusal:
            raise OutputRefusedError(message.refusal, completion=reply, usage=usage)
        if finish == "content_filter":
            raise OutputRefusedError(
                message.content or "(stopped by the content filter)", completion=reply, usage=usage
            )
        if self.mode == "tool":
            for call in message.tool_calls or ():
                if call.function.name == self.tool_name:
                    if finish == "length":
                        raise OutputTruncatedError(
                            "the reply hit the token limit inside the output",
                            completion=reply,
                            usage=usage,
                        )
                    return call.function.arguments or "{}", call.id
            if finish == "length":
                raise OutputTruncatedError(
                    "the reply hit the token limit before the output", completion=reply, usage=usage
                )
            # The model answered without the tool: Anthropic's way of declining.
            raise OutputRefusedError(
                message.content or "(no answer)", completion=reply, usage=usage
            )
        text = message.content or ""
        if finish == "length":
            raise OutputTruncatedError(
                "the reply hit the token limit before the output was complete",
                completion=reply,
                usage=usage,
            )
        if self.mode == "prompted":
            text = first_json_value(text)
        return text, None

    def reask(self, text: str, call_id: str | None, error: OutputParseError) -> list[Any]:
        """The messages that send the validation error back for another try."""
        problem = f"That reply is not valid: {error}."
        if self.mode == "tool" and call_id is not None:
            return [
                AssistantMessage(
                    tool_calls=[ToolCall(id=call_id, function=FunctionCall(self.tool_name, text))]
                ),
                ToolMessage(
                    content=f"{problem} Call {self.tool_name} again with corrected arguments.",
                    tool_call_id=call_id,
                ),
            ]
        return [
            AssistantMessage(content=text),
            UserMessage(content=f"{problem} Answer again with only the corrected JSON value."),
        ]


_askings: dict[tuple[OutputSpec[Any], str | None, str], Asking] = {}


def asking_for(spec: OutputSpec[Any], mode: Mode | None, backend_kind: str) -> Asking:
    """The (cached) [Asking][llmfast.structured.call.Asking] of a spec, mode and backend."""
    key = (spec, mode, backend_kind)
    asking = _askings.get(key)
    if asking is None:
        asking = _askings[key] = Asking(spec, mode or default_mode(backend_kind), backend_kind)
    return asking


def first_json_value(text: str) -> str:
    """The first JSON object or array in ``text`` (prose and code fences around it
    skipped); the text itself when there is none, so that its error says why."""
    for i, c in enumerate(text):
        if c in "{[":
            try:
                _, end = _raw_decoder.raw_decode(text, i)
            except ValueError:
                continue
            return text[i:end]
    return text


def prompt_messages(prompt: Any) -> tuple[list[Any], dict[str, Any]]:
    """A prompt as a message list, plus the parameters a whole ``ChatRequest`` held."""
    if isinstance(prompt, str):
        return [UserMessage(content=prompt)], {}
    if isinstance(prompt, ChatRequest):
        fields = msgspec.structs.asdict(prompt)
        messages = list(fields.pop("messages"))
        fields.pop("model", None)
        return messages, {k: v for k, v in fields.items() if v is not None}
    if isinstance(prompt, Sequence):
        return list(prompt), {}
    raise TypeError(f"a prompt is a string or a list of messages, not {type(prompt).__name__}")


async def structured_chat(
    client: ClientCalls,
    prompt: Any,
    spec: OutputSpec[T],
    *,
    mode: Mode | None = None,
    max_attempts: int = 3,
    max_total_tokens: int | None = None,
    timeout: float | None = None,
    **call: Any,
) -> StructuredCompletion[T]:
    """Run one structured call through ``client`` (see the module).

    Args:
        mode: ``"native"``, ``"tool"`` or ``"prompted"`` (default: per backend).
        max_attempts: replies to try before giving up (re-asks included).
        max_total_tokens: stop re-asking once the attempts used this many tokens.
        timeout: the whole call's deadline in seconds, re-asks included.
        call: the other keywords of ``client.chat`` (model, headers, cache, params).

    Raises:
        OutputValidationError: no attempt validated (each one's text and error inside).
        OutputRefusedError: the model refused.
        OutputTruncatedError: the reply hit the token limit.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    asking = asking_for(spec, mode, client.backend.kind)
    messages, request_params = prompt_messages(prompt)
    params = asking.request_params({**request_params, **call})
    messages = asking.messages(messages)
    deadline = None if timeout is None else time.monotonic() + timeout
    attempts: list[OutputAttempt] = []
    usage: Usage | None = None
    reply: ChatCompletion | None = None
    for attempt in range(1, max_attempts + 1):
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.001)
        reply = await client.chat(messages, timeout=remaining, **params)
        usage = add_usage(usage, reply.total_usage)
        text, call_id = asking.reply_text(reply, usage)
        try:
            value = spec.parse(text)
        except OutputParseError as exc:
            attempts.append(OutputAttempt(text, str(exc), exc.path))
            spent = max_total_tokens is not None and (usage.total_tokens if usage else 0) >= (
                max_total_tokens
            )
            late = deadline is not None and time.monotonic() >= deadline
            if attempt == max_attempts or spent or late:
                break
            messages = [*messages, *asking.reask(text, call_id, exc)]
            continue
        fields = msgspec.structs.asdict(reply)
        fields["usage"] = usage  # every attempt's, so nothing is earlier
        fields["earlier_usage"] = None
        return StructuredCompletion(**fields, output=value, attempts=attempt)
    why = attempts[-1].error if attempts else "no reply"
    raise OutputValidationError(
        f"no valid {spec.name} after {len(attempts)} attempt(s): {why}",
        attempts=attempts,
        completion=reply,
        usage=usage,
    )
