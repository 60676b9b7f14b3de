"""Structured output: typed replies, strict schemas, partial objects while streaming.

See ``docs/structured-output.md``.
"""

from llmfast.structured.output import OutputParseError, OutputSpec, output_spec
from llmfast.structured.strict import StrictSchema, to_strict

__all__ = ["OutputParseError", "OutputSpec", "StrictSchema", "output_spec", "to_strict"]
