"""Output types -> JSON Schemas and decoders, built once per type.

[output_spec][llmfast.structured.output.output_spec] takes what a caller passes as
``output=``: a `msgspec.Struct`, a dataclass, a `TypedDict`, `list[...]`, a `Literal`
or `Enum`, a union, a pydantic model (when pydantic is installed), or a raw JSON
Schema dict (the result is then plain builtins). It returns an
[OutputSpec][llmfast.structured.output.OutputSpec] holding the schema, its strict-mode
form and a decoder; specs are cached, so a structured call costs one dict look-up
before the plain call, and one msgspec decode after it.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import msgspec

from llmfast.structured.nulls import drop_added_nulls
from llmfast.structured.strict import StrictSchema, referenced, to_strict

__all__ = ["OutputParseError", "OutputSpec", "output_spec"]

T = TypeVar("T")

_decode_any = msgspec.json.Decoder().decode
_encode_sorted = msgspec.json.Encoder(order="sorted").encode
_NAME = re.compile(r"[^a-zA-Z0-9_-]+")


class OutputParseError(ValueError):
    """One reply that did not decode into the output type (the re-ask loop's input).

    ``path`` is where in the value it failed (``$.items[0].qty``) when known.
    """

    def __init__(self, message: str, *, path: str | None = None, truncated: bool = False):
        super().__init__(message)
        self.path = path
        self.truncated = truncated


class OutputSpec(Generic[T]):
    """What llmfast needs to ask for, and decode, one output type.

    Attributes:
        type: the Python type (``None`` for a raw JSON Schema).
        name: a name for the schema (``[a-zA-Z0-9_-]``, at most 64 characters).
        schema: the JSON Schema of what the model must send (an object; a non-object
            type is wrapped as ``{"value": ...}`` and unwrapped on decode).
        strict: the strict-mode form, see [to_strict][llmfast.structured.strict.to_strict].
        wrapped: whether the value is wrapped in ``{"value": ...}``.
    """

    __slots__ = ("_decode", "name", "schema", "strict", "type", "wrapped")

    def __init__(
        self,
        type_: Any,
        name: str,
        schema: dict[str, Any],
        decode: Callable[[bytes | str], T],
        wrapped: bool,
        strict: StrictSchema | None = None,
    ) -> None:
        self.type = type_
        self.name = name
        self.schema = schema
        self.strict: StrictSchema = strict if strict is not None else to_strict(schema)
        self.wrapped = wrapped
        self._decode = decode

    def parse(self, text: str | bytes) -> T:
        """Decode and validate one reply.

        Raises:
            OutputParseError: the reply is not JSON or not an instance of the type.
        """
        try:
            return self._decode(text)
        except msgspec.ValidationError as exc:
            message = str(exc)
            path = message.rsplit(" - at `", 1)[1].rstrip("`") if " - at `" in message else None
            raise OutputParseError(message, path=path) from exc
        except msgspec.DecodeError as exc:
            message = str(exc)
            truncated = "truncated" in message.lower()
            raise OutputParseError(f"not valid JSON: {message}", truncated=truncated) from exc
        except RecursionError as exc:
            raise OutputParseError("the JSON value is nested too deeply") from exc
        except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
            raise OutputParseError(str(exc)) from exc

    def response_format(self) -> dict[str, Any]:
        """The OpenAI ``response_format`` asking for this output (strict when possible)."""
        return {
            "type": "json_schema",
            "json_schema": {
                "name": self.name,
                "schema": self.strict.schema,
                "strict": self.strict.strict,
            },
        }

    def __repr__(self) -> str:
        return f"OutputSpec({self.name!r}, strict={self.strict.strict})"


_cache: dict[Any, OutputSpec[Any]] = {}
_lock = threading.Lock()


def output_spec(output: Any) -> OutputSpec[Any]:
    """The cached [OutputSpec][llmfast.structured.output.OutputSpec] of an output type
    or raw JSON Schema dict."""
    if isinstance(output, OutputSpec):
        return output
    key: Any = output
    if isinstance(output, dict):
        key = ("schema", _encode_sorted(output))
    try:
        spec = _cache.get(key)
    except TypeError:  # an unhashable type form
        return _build(output)
    if spec is None:
        spec = _build(output)
        with _lock:
            _cache[key] = spec
    return spec


def _build(output: Any) -> OutputSpec[Any]:
    if isinstance(output, dict):
        return _from_schema(output)
    if _is_pydantic_model(output):
        return _from_pydantic(output)
    try:
        schema = msgspec.json.schema(output)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{output!r} is not a type llmfast can ask a model for: {exc}") from exc
    name = _name_of(output)
    defs = schema.pop("$defs", None)
    if "$ref" in schema and len(schema) == 1 and defs:
        # Inline the root definition (kept in $defs only if something refers to it).
        root_name = schema["$ref"].rsplit("/", 1)[1]
        schema = dict(defs[root_name])
        if not referenced(root_name, schema, defs):
            del defs[root_name]
    wrapped = schema.get("type") != "object"
    if wrapped:
        schema = {
            "type": "object",
            "properties": {"value": schema},
            "required": ["value"],
            "additionalProperties": False,
        }
        target: Any = msgspec.defstruct("Output", [("value", output)])
    else:
        target = output
    if defs:
        schema["$defs"] = defs
    strict = to_strict(schema)
    decoder = msgspec.json.Decoder(target, strict=True)
    decode: Callable[[bytes | str], Any]
    if strict.strict and strict.added_nulls:
        original = schema
        convert = msgspec.convert

        def decode(text: bytes | str) -> Any:
            value = drop_added_nulls(_decode_any(text), original)
            return convert(value, target, strict=True)
    else:
        decode = decoder.decode
    if wrapped:
        inner = decode

        def decode(text: bytes | str) -> Any:
            return inner(text).value

    return OutputSpec(output, name, schema, decode, wrapped, strict)


def _from_schema(schema: dict[str, Any]) -> OutputSpec[Any]:
    name = _clean_name(str(schema.get("title") or "output"))
    if schema.get("type") == "object":
        return OutputSpec(None, name, schema, _decode_any, False)
    defs = schema.get("$defs")
    inner = {k: v for k, v in schema.items() if k != "$defs"}
    wrapper: dict[str, Any] = {
        "type": "object",
        "properties": {"value": inner},
        "required": ["value"],
        "additionalProperties": False,
    }
    if defs:
        wrapper["$defs"] = defs

    def decode(text: bytes | str) -> Any:
        value = _decode_any(text)
        if not isinstance(value, dict) or "value" not in value:
            raise msgspec.ValidationError("Expected an object with a `value` key - at `$`")
        return value["value"]

    return OutputSpec(None, name, wrapper, decode, True)


def _is_pydantic_model(output: Any) -> bool:
    pydantic = sys.modules.get("pydantic")
    return (
        pydantic is not None and isinstance(output, type) and issubclass(output, pydantic.BaseModel)
    )


def _from_pydantic(model: Any) -> OutputSpec[Any]:
    schema: dict[str, Any] = model.model_json_schema()
    strict = to_strict(schema)
    if strict.strict and strict.added_nulls:

        def decode(text: bytes | str) -> Any:
            return model.model_validate(drop_added_nulls(_decode_any(text), schema))
    else:
        decode = model.model_validate_json
    return OutputSpec(model, _clean_name(model.__name__), schema, decode, False, strict)


def _name_of(output: Any) -> str:
    name = getattr(output, "__name__", None)
    if not isinstance(name, str) or name in {"list", "dict", "Union", "Optional", "Literal"}:
        name = "output"
    return _clean_name(name)


def _clean_name(name: str) -> str:
    return _NAME.sub("_", name)[:64] or "output"
