"""The tool loop: call the model, run the tools it asks for, send back the results.

[run_tools][llmfast.structured.loop.run_tools] repeats until the model answers without
asking for a tool, or ``max_steps`` model calls have been made. The tools one reply
asks for run concurrently (async tools on the loop, plain ones in threads, each within
its timeout). Whatever goes wrong in a tool is told to the model so that it can
correct itself: an unknown tool, arguments that don't validate (with the path), a
timeout, or an exception (unless ``tool_errors="raise"``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from llmfast.errors import LLMFastError
from llmfast.structured.call import prompt_messages
from llmfast.structured.tools import FunctionTool, ToolArgumentsError, result_text, tool
from llmfast.structured.usage import add_usage
from llmfast.types import AssistantMessage, ChatCompletion, ToolCall, ToolMessage, Usage

if TYPE_CHECKING:
    from llmfast.client_calls import ClientCalls

__all__ = ["ToolLoopLimitError", "ToolRun", "run_tools"]


@dataclass
class ToolRun:
    """The result of [run_tools][llmfast.structured.loop.run_tools]."""

    completion: ChatCompletion
    """The model's final answer."""
    messages: list[Any]
    """The whole transcript: the prompt, every assistant turn and tool result."""
    usage: Usage | None
    """The usage summed over every model call."""
    steps: int
    """How many model calls it took."""
    tool_calls: list[ToolCall] = field(default_factory=list)
    """Every tool call the model made, in order."""

    @property
    def text(self) -> str | None:
        """The final answer's text."""
        return self.completion.text


class ToolLoopLimitError(LLMFastError):
    """The model still asked for tools after ``max_steps`` calls; the transcript so far
    is in ``messages`` and the summed usage in ``usage``."""

    def __init__(self, max_steps: int, messages: list[Any], usage: Usage | None) -> None:
        super().__init__(f"the model still asked for tools after {max_steps} steps")
        self.messages = messages
        self.usage = usage


async def run_tools(
    client: ClientCalls,
    prompt: Any,
    tools: Sequence[FunctionTool[Any] | Callable[..., Any]],
    *,
    max_steps: int = 8,
    tool_errors: Literal["report", "raise"] = "report",
    **call: Any,
) -> ToolRun:
    """Run the tool loop through ``client`` (see the module).

    Args:
        tools: [FunctionTool][llmfast.structured.tools.FunctionTool]s, or plain
            functions (made into tools with their defaults).
        max_steps: model calls at most; then
            [ToolLoopLimitError][llmfast.structured.loop.ToolLoopLimitError].
        tool_errors: ``"report"`` (default) tells the model about a tool's exception;
            ``"raise"`` re-raises it (the other tools of that step are cancelled).
        call: the other keywords of ``client.chat``.
    """
    if max_steps < 1:
        raise ValueError("max_steps must be at least 1")
    made = [t if isinstance(t, FunctionTool) else tool(t) for t in tools]
    by_name = {t.name: t for t in made}
    if len(by_name) != len(made):
        raise ValueError("two tools have the same name")
    messages, request_params = prompt_messages(prompt)
    params = {**request_params, **call, "tools": [t.definition for t in made]}
    usage: Usage | None = None
    every_call: list[ToolCall] = []
    for step in range(1, max_steps + 1):
        reply = await client.chat(messages, **params)
        usage = add_usage(usage, reply.total_usage)
        calls = reply.tool_calls
        message = AssistantMessage(content=reply.text, tool_calls=calls or None)
        messages.append(message)
        if not calls:
            return ToolRun(reply, messages, usage, step, every_call)
        every_call.extend(calls)
        results = await _run_step(calls, by_name, tool_errors)
        messages.extend(
            ToolMessage(content=text, tool_call_id=c.id)
            for c, text in zip(calls, results, strict=True)
        )
    raise ToolLoopLimitError(max_steps, messages, usage)


async def _run_step(
    calls: list[ToolCall], by_name: dict[str, FunctionTool[Any]], tool_errors: str
) -> list[str]:
    tasks = [asyncio.ensure_future(_run_one(c, by_name, tool_errors)) for c in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _run_one(call: ToolCall, by_name: dict[str, FunctionTool[Any]], tool_errors: str) -> str:
    name = call.function.name
    found = by_name.get(name)
    if found is None:
        return f"Error: there is no tool named {name!r}; the tools are {sorted(by_name)}."
    try:
        result = await found.call(call.function.arguments)
    except ToolArgumentsError as exc:
        return f"Error: {exc}. Call {name} again with corrected arguments."
    except TimeoutError:
        return f"Error: {name} did not finish within {found.timeout} s."
    except Exception as exc:
        if tool_errors == "raise":
            raise
        return f"Error: {name} raised {type(exc).__name__}: {exc}"
    return result_text(result)
