"""JSON Schema -> the subset OpenAI's strict structured-output mode accepts.

Strict mode (``response_format`` ``json_schema`` with ``strict: true``, and strict
function tools) constrains decoding to the schema, but accepts only a subset of JSON
Schema. [to_strict][llmfast.structured.strict.to_strict] rewrites a schema into that
subset where it can:

- the root is an object (a root ``$ref`` is inlined);
- every object lists all of its properties in ``required`` and has
  ``additionalProperties: false``; a property that was optional becomes nullable, and
  ``added_nulls`` says so, and [drop_added_nulls][llmfast.structured.nulls.drop_added_nulls]
  removes the ``null`` the model sends for such a property before validation, so that
  the field takes its default;
- keywords strict mode does not accept (``default``, ``minLength``, ``uniqueItems``,
  ``discriminator``, other ``format`` values...) move into the ``description``, so the
  model still reads them; ``oneOf`` becomes ``anyOf`` and a one-element ``allOf`` is
  inlined.

A schema that cannot be made strict without changing what it accepts (a free-form
object or a ``dict[str, X]``, ``not``, ``if``/``then``, a multi-element ``allOf``, a
schema past the size limits) is returned as it was with ``strict=False`` and the reasons.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

__all__ = ["STRING_FORMATS", "StrictSchema", "accepts_null", "def_name", "referenced", "to_strict"]

STRING_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
"""The ``format`` values strict mode accepts on strings."""

_KEEP = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "anyOf",
        "$ref",
        "$defs",
        "description",
        "title",
        "pattern",
        "multipleOf",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "minItems",
        "maxItems",
    }
)
_MOVE_TO_DESCRIPTION = frozenset(
    {
        "default",
        "examples",
        "minLength",
        "maxLength",
        "uniqueItems",
        "minProperties",
        "maxProperties",
        "contentEncoding",
        "contentMediaType",
        "deprecated",
        "readOnly",
        "writeOnly",
    }
)
_DROP = frozenset({"discriminator", "$schema", "$id", "$comment"})
_NOT_STRICT = frozenset(
    {
        "not",
        "if",
        "then",
        "else",
        "dependentRequired",
        "dependentSchemas",
        "patternProperties",
        "unevaluatedProperties",
        "unevaluatedItems",
        "propertyNames",
        "contains",
        "minContains",
        "maxContains",
        "prefixItems",
    }
)

MAX_PROPERTIES = 5000
MAX_DEPTH = 10
MAX_ENUM_VALUES = 1000


@dataclass(frozen=True)
class StrictSchema:
    """The result of [to_strict][llmfast.structured.strict.to_strict]."""

    schema: dict[str, Any]
    """The schema to send (the strict one, or the original when ``strict`` is False)."""
    strict: bool
    """Whether ``schema`` fits strict mode."""
    reasons: tuple[str, ...] = ()
    """Why the schema could not be made strict."""
    added_nulls: bool = False
    """Whether some optional, non-nullable property was made nullable."""


class _NotStrict(Exception):
    pass


def to_strict(schema: dict[str, Any]) -> StrictSchema:
    """Rewrite ``schema`` for strict mode, or say why it can't be (see the module)."""
    original = schema
    schema = copy.deepcopy(schema)
    defs: dict[str, Any] = schema.pop("$defs", None) or {}
    if "definitions" in schema:
        defs = {**schema.pop("definitions"), **defs}
    root = schema
    ref = root.get("$ref")
    name = None
    if isinstance(ref, str) and len(root) == 1:
        name = def_name(ref)
        if name is None or name not in defs:
            return StrictSchema(original, False, (f"unresolvable root $ref {ref!r}",))
        root = copy.deepcopy(defs[name])
    walker = _Walker(defs)
    try:
        if _object_type(root) is not True:
            raise _NotStrict("the root is not an object")
        new_root = walker.node(root, depth=1)
        new_defs = {name: walker.node(node, depth=1) for name, node in defs.items()}
        walker.check_limits()
    except _NotStrict as exc:
        return StrictSchema(original, False, (str(exc),))
    if root is not schema and name in new_defs and not referenced(name, new_root, new_defs):
        del new_defs[name]  # the inlined root is not referenced (not recursive)
    if new_defs:
        new_root["$defs"] = new_defs
    return StrictSchema(new_root, True, (), walker.added_nulls)


def referenced(name: str, *nodes: Any) -> bool:
    target = (f"#/$defs/{name}", f"#/definitions/{name}")
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("$ref") in target:
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def def_name(ref: str) -> str | None:
    for prefix in ("#/$defs/", "#/definitions/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return None


def _object_type(node: dict[str, Any]) -> bool | None:
    kind = node.get("type")
    if kind == "object":
        return True
    if isinstance(kind, list):
        return "object" in kind or None
    return None if "properties" in node else False


class _Walker:
    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs
        self.added_nulls = False
        self.properties = 0
        self.enum_values = 0

    def check_limits(self) -> None:
        if self.properties > MAX_PROPERTIES:
            raise _NotStrict(f"{self.properties} object properties (strict mode allows 5000)")
        if self.enum_values > MAX_ENUM_VALUES:
            raise _NotStrict(f"{self.enum_values} enum values (strict mode allows 1000)")

    def node(self, node: Any, depth: int) -> dict[str, Any]:
        if not isinstance(node, dict):
            raise _NotStrict(f"a schema that is not an object: {node!r:.60}")
        if depth > MAX_DEPTH:
            raise _NotStrict(f"nesting deeper than {MAX_DEPTH} levels")
        node = dict(node)
        for key in ("oneOf",):
            if key in node:
                node["anyOf"] = node.pop(key) + node.pop("anyOf", [])
        if "allOf" in node:
            parts = node.pop("allOf")
            if len(parts) != 1:
                raise _NotStrict("allOf with more than one schema")
            node = {**parts[0], **node}
        if "definitions" in node or "$defs" in node:
            raise _NotStrict("$defs nested below the root")
        notes: list[str] = []
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _NOT_STRICT:
                raise _NotStrict(f"the {key!r} keyword")
            if key in _DROP:
                continue
            if key in _MOVE_TO_DESCRIPTION or (key == "format" and value not in STRING_FORMATS):
                notes.append(f"{key}: {_show(value)}")
                continue
            if key == "format":
                out[key] = value
                continue
            if key not in _KEEP:
                notes.append(f"{key}: {_show(value)}")
                continue
            out[key] = value
        if "$ref" in out:
            ref = out["$ref"]
            name = def_name(ref) if isinstance(ref, str) else None
            if ref != "#" and (name is None or name not in self.defs):
                raise _NotStrict(f"unresolvable $ref {ref!r}")
            if ref == "#":
                raise _NotStrict("a $ref to the root")
            if (len(out) > 1 or notes) and name is not None:
                # Strict mode takes no keywords beside $ref: inline the definition once
                # (its own references stay references) under this node's keywords.
                inlined = self.node(self.defs[name], depth)
                out.pop("$ref")
                return {**inlined, **out} if not notes else self._noted({**inlined, **out}, notes)
        if "enum" in out:
            values = out["enum"]
            self.enum_values += len(values)
            if "type" not in out:
                kinds = {_json_type(v) for v in values}
                if len(kinds) == 1 and None not in kinds:
                    out["type"] = kinds.pop()
        if "anyOf" in out:
            out["anyOf"] = [self.node(branch, depth) for branch in out["anyOf"]]
        if "items" in out:
            if not isinstance(out["items"], dict):
                raise _NotStrict("tuple-style items")
            out["items"] = self.node(out["items"], depth + 1)
        if _object_type(out) is not False or "properties" in out:
            self._object(out, depth)
        if not ({"type", "enum", "const", "anyOf", "$ref"} & out.keys()):
            raise _NotStrict("a schema that accepts any value")
        return self._noted(out, notes) if notes else out

    @staticmethod
    def _noted(out: dict[str, Any], notes: list[str]) -> dict[str, Any]:
        described = out.get("description")
        text = "; ".join(notes)
        out["description"] = f"{described} ({text})" if described else text
        return out

    def _object(self, out: dict[str, Any], depth: int) -> None:
        extra = out.get("additionalProperties", True)
        properties = out.get("properties")
        if (extra is not False and extra is not True) or (properties is None and extra):
            raise _NotStrict("an object with free-form keys (a dict)")
        if not isinstance(properties, dict):
            properties = {}
        required = set(out.get("required", ()))
        new_props: dict[str, Any] = {}
        for name, prop in properties.items():
            self.properties += 1
            new = self.node(prop, depth + 1)
            if name not in required and not accepts_null(new):
                new = _nullable(new)
                self.added_nulls = True
            new_props[name] = new
        out["properties"] = new_props
        out["required"] = list(new_props)
        out["additionalProperties"] = False


def _json_type(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return None


def accepts_null(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    if "enum" in node and None in node["enum"]:
        return True
    return any(accepts_null(branch) for branch in node.get("anyOf", ()))


def _nullable(node: dict[str, Any]) -> dict[str, Any]:
    kind = node.get("type")
    if isinstance(kind, str) and not ({"enum", "const", "anyOf", "$ref"} & node.keys()):
        return {**node, "type": [kind, "null"]}
    if "anyOf" in node and len(node) == 1:
        return {"anyOf": [*node["anyOf"], {"type": "null"}]}
    wrapper: dict[str, Any] = {"anyOf": [node, {"type": "null"}]}
    if "description" in node:
        wrapper["description"] = node["description"]
    return wrapper


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
