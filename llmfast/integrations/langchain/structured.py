"""``with_structured_output`` on llmfast's structured output.

The schema becomes an llmfast [OutputSpec][llmfast.OutputSpec] (pydantic models and
llmfast's own types directly; TypedDicts, pydantic v1 models and JSON Schema dicts
through LangChain's ``convert_to_json_schema``, which keeps their descriptions), so
the request is what ``client.chat(output=...)`` would send for the backend: strict
OpenAI ``json_schema`` when the schema allows it, a forced tool call for Anthropic
(llmfast's per-provider mode), the full schema for Gemini and Ollama. The reply is
decoded and validated by the spec's cached decoder. While streaming, a dict output is
yielded as it grows (llmfast's linear-time partial JSON parser); a typed output once
it is complete and valid.

Methods: ``"json_schema"`` (the provider's native mode), ``"function_calling"`` (a
forced tool call), ``"json_mode"`` (``response_format={"type": "json_object"}``, the
schema only validates the reply). A reply that does not validate raises LangChain's
``OutputParserException``; with ``include_raw=True`` it is returned as
``parsing_error`` beside the raw message.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from operator import itemgetter
from typing import Any, Literal

import msgspec
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.output_parsers import BaseTransformOutputParser
from langchain_core.outputs import ChatGeneration, Generation
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_json_schema
from pydantic import BaseModel, ConfigDict

from llmfast.structured.call import Asking, asking_for
from llmfast.structured.output import OutputParseError, OutputSpec, output_spec
from llmfast.structured.partial import PartialJSON, PartialJSONError

from .messages import text_of

__all__ = ["Method", "StructuredOutputParser", "structured_binding"]

Method = Literal["json_schema", "function_calling", "json_mode"]
_MODES = {"json_schema": "native", "function_calling": "tool"}
_encode = msgspec.json.Encoder().encode
_NOTHING: Any = object()


def _spec(schema: Any) -> tuple[OutputSpec[Any], Any]:
    """The spec to ask with, and the pydantic v1 model to build (or ``None``)."""
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return output_spec(schema), None
    v1 = sys.modules.get("pydantic.v1")
    if v1 is not None and isinstance(schema, type) and issubclass(schema, v1.BaseModel):
        return output_spec(convert_to_json_schema(schema)), schema
    if isinstance(schema, dict) or _is_typeddict(schema):
        return output_spec(convert_to_json_schema(schema)), None
    return output_spec(schema), None  # msgspec Structs, dataclasses...


def _is_typeddict(schema: Any) -> bool:
    return isinstance(schema, type) and issubclass(schema, dict) and hasattr(schema, "__total__")


class StructuredOutputParser(BaseTransformOutputParser[Any]):
    """Reads the structured value out of a reply (the content, or the tool call)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    spec: Any
    """The llmfast ``OutputSpec``."""
    tool_name: str | None = None
    """The tool whose call holds the value (``function_calling``), else the text does."""
    v1_model: Any = None

    def parse(self, text: str) -> Any:
        """The value of a reply's JSON text, validated."""
        try:
            value = self.spec.parse(text)
        except OutputParseError as exc:
            raise OutputParserException(
                f"the reply is not a valid {self.spec.name}: {exc}", llm_output=text
            ) from exc
        if self.v1_model is not None:
            try:
                return self.v1_model.parse_obj(value)
            except ValueError as exc:
                raise OutputParserException(str(exc), llm_output=text) from exc
        return value

    def parse_result(self, result: list[Generation], *, partial: bool = False) -> Any:
        generation = result[0]
        if not isinstance(generation, ChatGeneration):
            return self.parse(generation.text)
        return self.parse(self._text_of(generation.message))

    def _text_of(self, message: BaseMessage) -> str:
        refusal = message.additional_kwargs.get("refusal")
        if refusal:
            raise OutputParserException(f"the model refused: {refusal}")
        if self.tool_name is None:
            return text_of(message.content)
        for call in getattr(message, "tool_calls", ()):
            if call["name"] == self.tool_name:
                return _encode(call["args"]).decode()
        for bad in getattr(message, "invalid_tool_calls", ()):
            if bad["name"] == self.tool_name:
                return str(bad["args"])
        raise OutputParserException(
            f"the model did not call {self.tool_name}", llm_output=text_of(message.content)
        )

    def _transform(self, input: Iterator[str | BaseMessage]) -> Iterator[Any]:
        state = _Growing(self)
        for chunk in input:
            value = state.feed(chunk)
            if value is not _NOTHING:
                yield value
        value = state.finish()
        if value is not _NOTHING:
            yield value

    async def _atransform(self, input: AsyncIterator[str | BaseMessage]) -> AsyncIterator[Any]:
        state = _Growing(self)
        async for chunk in input:
            value = state.feed(chunk)
            if value is not _NOTHING:
                yield value
        value = state.finish()
        if value is not _NOTHING:
            yield value

    @property
    def _type(self) -> str:
        return "llmfast_structured_output"


class _Growing:
    """A streamed reply, read as it comes: partial dicts while a dict output grows."""

    __slots__ = ("_full", "_index", "_last", "_parser", "_partial", "_pieces")

    def __init__(self, parser: StructuredOutputParser) -> None:
        self._parser = parser
        dict_output = parser.spec.type is None and not parser.spec.wrapped
        self._partial: PartialJSON | None = (
            PartialJSON() if dict_output and parser.v1_model is None else None
        )
        self._pieces: list[str] = []
        self._full: BaseMessage | None = None
        self._index: int | None = None
        self._last: Any = _NOTHING

    def feed(self, chunk: str | BaseMessage) -> Any:
        if isinstance(chunk, BaseMessage) and not isinstance(chunk, AIMessageChunk):
            self._full = chunk  # streaming was bypassed: one whole message
            return _NOTHING
        piece = self._piece(chunk)
        if not piece:
            return _NOTHING
        self._pieces.append(piece)
        partial = self._partial
        if partial is None:
            return _NOTHING
        try:
            partial.feed(piece)
        except PartialJSONError:
            self._partial = None  # not JSON after all: finish() says why
            return _NOTHING
        value = partial.snapshot()
        if value is None or value == self._last:
            return _NOTHING
        self._last = value
        return value

    def _piece(self, chunk: str | BaseMessage) -> str:
        if isinstance(chunk, str):
            return chunk
        name = self._parser.tool_name
        if name is None:
            return text_of(chunk.content)
        pieces = []
        for part in getattr(chunk, "tool_call_chunks", ()):
            if part.get("name") == name and self._index is None:
                self._index = part.get("index")
            if part.get("index") == self._index and self._index is not None:
                pieces.append(part.get("args") or "")
        return "".join(pieces)

    def finish(self) -> Any:
        parser = self._parser
        if self._full is not None:
            value = parser.parse_result([ChatGeneration(message=self._full)])
        elif parser.tool_name is not None and not self._pieces:
            raise OutputParserException(f"the model did not call {parser.tool_name}")
        else:
            value = parser.parse("".join(self._pieces) or "{}")
        return _NOTHING if value == self._last else value


def structured_binding(
    model: Any,
    schema: Any,
    *,
    method: Method,
    include_raw: bool,
    strict: bool | None,
    backend_kind: str,
) -> Runnable[Any, Any]:
    """The runnable ``with_structured_output`` returns (see the module)."""
    spec, v1_model = _spec(schema)
    if strict and not spec.strict.strict:
        reasons = "; ".join(spec.strict.reasons)
        raise ValueError(f"strict=True, but {spec.name}'s schema can't be strict: {reasons}")
    traced = {
        "kwargs": {"method": method, "strict": strict},
        "schema": convert_to_json_schema(schema),
    }
    tool_name: str | None = None
    if method == "json_mode":
        params: dict[str, Any] = {"response_format": {"type": "json_object"}}
    elif method in _MODES:
        asking: Asking = asking_for(spec, _MODES[method], backend_kind)  # type: ignore[arg-type]
        params = dict(asking.params)
        if asking.mode == "tool":
            tool_name = asking.tool_name
            params["tools"] = [asking.tool]
    else:
        raise ValueError(
            f"unknown method {method!r}: use json_schema, function_calling or json_mode"
        )
    llm = model.bind(ls_structured_output_format=traced, **params)
    parser = StructuredOutputParser(spec=spec, tool_name=tool_name, v1_model=v1_model)
    if not include_raw:
        return llm | parser  # type: ignore[no-any-return]
    parsed = RunnablePassthrough.assign(
        parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
    )
    unparsed = RunnablePassthrough.assign(parsed=lambda _: None)
    with_fallback = parsed.with_fallbacks([unparsed], exception_key="parsing_error")
    return RunnableMap(raw=llm) | with_fallback
