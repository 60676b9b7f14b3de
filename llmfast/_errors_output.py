"""The structured-output errors of [llmfast.errors][] (import them from there)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmfast.errors import LLMFastError

if TYPE_CHECKING:
    from llmfast.types import ChatCompletion, OutputAttempt, Usage


class OutputError(LLMFastError):
    """A structured call's reply could not be turned into the requested output.

    Attributes:
        completion: the last completion received.
        usage: the usage summed over every attempt of the call.
    """

    def __init__(
        self, message: str, *, completion: ChatCompletion | None = None, usage: Usage | None = None
    ) -> None:
        super().__init__(message)
        self.completion = completion
        self.usage = usage


class OutputValidationError(OutputError, ValueError):
    """Every attempt's reply failed validation; ``attempts`` holds each one's text and
    error."""

    def __init__(
        self,
        message: str,
        *,
        attempts: list[OutputAttempt],
        completion: ChatCompletion | None = None,
        usage: Usage | None = None,
    ) -> None:
        super().__init__(message, completion=completion, usage=usage)
        self.attempts = attempts


class OutputRefusedError(OutputError):
    """The model declined to answer with the output (``refusal`` holds its words)."""

    def __init__(
        self,
        refusal: str,
        *,
        completion: ChatCompletion | None = None,
        usage: Usage | None = None,
    ) -> None:
        super().__init__(f"the model refused: {refusal[:300]}", completion=completion, usage=usage)
        self.refusal = refusal


class OutputTruncatedError(OutputError):
    """The reply hit the token limit (``finish_reason: length``) before the output
    was complete; raise ``max_tokens``."""


for _cls in (OutputError, OutputValidationError, OutputRefusedError, OutputTruncatedError):
    _cls.__module__ = "llmfast.errors"
