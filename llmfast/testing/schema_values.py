"""Values that satisfy a JSON Schema: what the test server answers a structured request with.

[schema_value][llmfast.testing.schema_values.schema_value] walks the subset of JSON
Schema that msgspec, pydantic and strict mode produce (types, ``enum``/``const``,
``anyOf``/``oneOf``, ``$ref``/``$defs``, ``properties``/``required``, ``items`` with
``minItems``/``maxItems``, numeric bounds, string ``minLength``/``maxLength`` and the
common ``format`` values) and builds a value from a seeded random source, so that a
test gets the same value every run.
"""

from __future__ import annotations

import random
from typing import Any

__all__ = ["schema_value"]

_FORMATS = {
    "date-time": "2026-01-02T03:04:05Z",
    "date": "2026-01-02",
    "time": "03:04:05",
    "duration": "P1D",
    "email": "ada@example.com",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uuid": "12345678-1234-5678-1234-567812345678",
    "uri": "https://example.com/",
    "byte": "aGVsbG8=",
    "base64": "aGVsbG8=",
}
_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")


def schema_value(schema: dict[str, Any], seed: int = 0, *, nulls: bool = True) -> Any:
    """A value valid under ``schema``, the same for the same ``seed``.

    With ``nulls=False`` a nullable property gets a non-null value when it has one.
    """
    return _Maker(schema, random.Random(seed), nulls).make(schema, 0)


class _Maker:
    def __init__(self, root: dict[str, Any], rng: random.Random, nulls: bool) -> None:
        self.defs: dict[str, Any] = {**root.get("definitions", {}), **root.get("$defs", {})}
        self.rng = rng
        self.nulls = nulls

    def make(self, node: Any, depth: int) -> Any:
        if not isinstance(node, dict) or depth > 24:
            return None
        if "$ref" in node:
            name = str(node["$ref"]).rsplit("/", 1)[-1]
            return self.make(self.defs.get(name, {}), depth + 1)
        if "const" in node:
            return node["const"]
        if "enum" in node:
            return self.rng.choice(node["enum"]) if node["enum"] else None
        for key in ("anyOf", "oneOf"):
            if key in node:
                branches = [b for b in node[key] if isinstance(b, dict)]
                if not self.nulls or depth > 12:
                    branches = [b for b in branches if b.get("type") != "null"] or branches
                return self.make(self.rng.choice(branches), depth + 1) if branches else None
        if "allOf" in node:
            merged: dict[str, Any] = {}
            for part in node["allOf"]:
                merged.update(part)
            return self.make(merged, depth + 1)
        kind = node.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if (self.nulls and depth <= 12) or k != "null"] or kind
            kind = self.rng.choice(kinds)
        if kind is None:
            kind = "object" if "properties" in node else "string"
        return getattr(self, f"_{kind}", self._null)(node, depth)

    def _null(self, node: dict[str, Any], depth: int) -> Any:
        return None

    def _boolean(self, node: dict[str, Any], depth: int) -> Any:
        return self.rng.random() < 0.5

    def _integer(self, node: dict[str, Any], depth: int) -> Any:
        low = node.get("minimum", node.get("exclusiveMinimum", -1000 - 1) + 1)
        high = node.get("maximum", node.get("exclusiveMaximum", 1000 + 1) - 1)
        low, high = int(low), int(high)
        value = self.rng.randint(low, max(low, high))
        step = node.get("multipleOf")
        if isinstance(step, int) and step > 0:
            value = (value // step) * step
            if value < low:
                value += step
        return value

    def _number(self, node: dict[str, Any], depth: int) -> Any:
        step = node.get("multipleOf")
        if isinstance(step, (int, float)) and step > 0:
            low = node.get("minimum", node.get("exclusiveMinimum", 0))
            return float(step) * (int(low // step) + 1)
        low = float(node.get("minimum", node.get("exclusiveMinimum", -1000.0)))
        high = float(node.get("maximum", node.get("exclusiveMaximum", 1000.0)))
        value = round(self.rng.uniform(low, high), 3)
        if ("exclusiveMinimum" in node and value <= low) or (
            "exclusiveMaximum" in node and value >= high
        ):
            value = (low + high) / 2
        return value

    def _string(self, node: dict[str, Any], depth: int) -> Any:
        fmt = node.get("format")
        if fmt in _FORMATS:
            return _FORMATS[fmt]
        text = " ".join(self.rng.choice(_WORDS) for _ in range(self.rng.randint(1, 3)))
        low = int(node.get("minLength", 0))
        high = int(node.get("maxLength", max(low, len(text))))
        if len(text) < low:
            text = (text + " ") * (low // (len(text) + 1) + 1)
        return text[: max(low, high)]

    def _array(self, node: dict[str, Any], depth: int) -> Any:
        low = int(node.get("minItems", 0))
        high = int(node.get("maxItems", max(low, 3)))
        count = self.rng.randint(low, max(low, min(high, low + 3))) if depth < 8 else low
        items = node.get("items", {})
        return [self.make(items, depth + 1) for _ in range(count)]

    def _object(self, node: dict[str, Any], depth: int) -> Any:
        props = node.get("properties") or {}
        required = set(node.get("required", ()))
        out: dict[str, Any] = {}
        for name, prop in props.items():
            if name in required or (depth < 6 and self.rng.random() < 0.5):
                out[name] = self.make(prop, depth + 1)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and depth < 6:
            for i in range(self.rng.randint(0, 2)):
                out[f"key{i}"] = self.make(extra, depth + 1)
        return out
