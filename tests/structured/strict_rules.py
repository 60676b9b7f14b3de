"""A validator for OpenAI's published strict-mode schema rules, written from the rules
(not from llmfast's transform), so the tests check the transform against them.

The rules (OpenAI "Structured Outputs", supported schemas):
- a $ref stands alone (no description or other keyword beside it);
- types: string, number, integer, boolean, object, array, null; enum; anyOf; $ref/$defs
  (recursion allowed); the root is an object, not anyOf;
- every object has additionalProperties: false and lists every property in required;
- supported keywords: string pattern, format in a fixed set; number multipleOf,
  (exclusive)maximum/minimum; array minItems/maxItems; title and description anywhere;
- composition other than anyOf (allOf, oneOf, not, if/then/else, dependent*) is not
  supported, nor patternProperties, unevaluatedProperties, propertyNames, min/maxProperties,
  contains, uniqueItems, minLength/maxLength, default;
- at most 5000 object properties in total, 10 levels of nesting, 1000 enum values.
"""

from __future__ import annotations

from typing import Any

TYPES = {"string", "number", "integer", "boolean", "object", "array", "null"}
FORMATS = {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
COMMON = {"title", "description"}
BY_TYPE = {
    "string": {"pattern", "format", "enum", "const"},
    "number": {"multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum"},
    "integer": {"multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum"},
    "array": {"items", "minItems", "maxItems"},
    "object": {"properties", "required", "additionalProperties"},
    "boolean": set(),
    "null": set(),
}


def strict_violations(schema: dict[str, Any]) -> list[str]:
    """Every rule ``schema`` breaks (empty when strict mode accepts it)."""
    problems: list[str] = []
    defs = schema.get("$defs", {})
    counts = {"properties": 0, "enum": 0}
    if schema.get("type") != "object" or "anyOf" in schema:
        problems.append("root: must be an object, not anyOf")

    def walk(node: Any, where: str, depth: int, root: bool = False) -> None:
        if depth > 10:
            problems.append(f"{where}: deeper than 10 levels")
            return
        if not isinstance(node, dict):
            problems.append(f"{where}: not a schema object")
            return
        keys = set(node) - COMMON - ({"$defs"} if root else set())
        if "$ref" in node:
            keys = set(node) - ({"$defs"} if root else set())
            ref = node["$ref"]
            if not (isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in defs):
                problems.append(f"{where}: $ref {ref!r} does not resolve to $defs")
            if keys - {"$ref"}:
                problems.append(f"{where}: keywords beside $ref: {sorted(keys - {'$ref'})}")
            return
        if "anyOf" in node:
            if keys - {"anyOf"}:
                problems.append(f"{where}: keywords beside anyOf: {sorted(keys - {'anyOf'})}")
            for i, branch in enumerate(node["anyOf"]):
                walk(branch, f"{where}.anyOf[{i}]", depth)
            return
        kind = node.get("type")
        kinds: list[Any] = kind if isinstance(kind, list) else [kind]
        if "enum" in node or "const" in node:
            values = node.get("enum", [node.get("const")])
            counts["enum"] += len(values)
            allowed = {"type", "enum", "const"}
            if keys - allowed:
                problems.append(f"{where}: keywords beside enum: {sorted(keys - allowed)}")
            return
        if not kinds or any(k not in TYPES for k in kinds):
            problems.append(f"{where}: no valid type ({kind!r})")
            return
        allowed = {"type"}.union(*(BY_TYPE[k] for k in kinds))
        if keys - allowed:
            problems.append(f"{where}: unsupported keywords {sorted(keys - allowed)}")
        if "format" in node and node["format"] not in FORMATS:
            problems.append(f"{where}: format {node['format']!r}")
        if "object" in kinds:
            props = node.get("properties")
            if not isinstance(props, dict):
                problems.append(f"{where}: object without properties")
                props = {}
            if node.get("additionalProperties") is not False:
                problems.append(f"{where}: additionalProperties is not false")
            if sorted(node.get("required", [])) != sorted(props):
                problems.append(f"{where}: required does not list every property")
            counts["properties"] += len(props)
            for name, prop in props.items():
                walk(prop, f"{where}.{name}", depth + 1)
        if "array" in kinds:
            if not isinstance(node.get("items"), dict):
                problems.append(f"{where}: array without an items schema")
            else:
                walk(node["items"], f"{where}[]", depth + 1)

    walk(schema, "$", 1, root=True)
    for name, node in defs.items():
        walk(node, f"$defs.{name}", 1)
    if counts["properties"] > 5000:
        problems.append("more than 5000 properties")
    if counts["enum"] > 1000:
        problems.append("more than 1000 enum values")
    return problems
