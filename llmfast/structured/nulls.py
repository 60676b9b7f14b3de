"""Dropping the nulls strict mode added: an optional property made nullable gets its
default back when the model sends ``null`` for it (see
[to_strict][llmfast.structured.strict.to_strict])."""

from __future__ import annotations

from typing import Any

from llmfast.structured.strict import accepts_null, def_name

__all__ = ["drop_added_nulls"]


def drop_added_nulls(value: Any, schema: dict[str, Any]) -> Any:
    """Remove, in place, the ``null`` of every optional property whose (original)
    ``schema`` does not accept null: strict mode made it nullable, and dropping it
    lets the field take its default. Returns ``value``."""
    _Pruner(schema.get("$defs") or schema.get("definitions") or {}).prune(value, schema, 0)
    return value


class _Pruner:
    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs

    def prune(self, value: Any, node: Any, depth: int) -> None:
        if depth > 64 or not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = def_name(ref)
            if name is not None and name in self.defs:
                self.prune(value, self.defs[name], depth + 1)
            return
        for branch in node.get("allOf", ()):
            self.prune(value, branch, depth + 1)
        for key in ("anyOf", "oneOf"):
            branches = node.get(key, ())
            matching = [b for b in branches if self.matches(value, b, depth + 1)]
            if len(matching) == 1:  # an ambiguous union is left as it is
                self.prune(value, matching[0], depth + 1)
        if isinstance(value, dict):
            properties = node.get("properties")
            if not isinstance(properties, dict):
                return
            required = node.get("required", ())
            for name, prop in properties.items():
                if name not in value:
                    continue
                item = value[name]
                if item is None:
                    if name not in required and not self.accepts_null(prop, depth):
                        del value[name]
                else:
                    self.prune(item, prop, depth + 1)
        elif isinstance(value, list):
            items = node.get("items")
            if isinstance(items, dict):
                for item in value:
                    self.prune(item, items, depth + 1)

    def matches(self, value: Any, node: Any, depth: int) -> bool:
        """Whether ``value`` could be an instance of the union branch ``node``
        (by its JSON type, its keys and single-valued tag properties)."""
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and depth < 64:
            node = self.defs.get(def_name(node["$ref"]) or "")
            depth += 1
        if not isinstance(node, dict):
            return False
        branches = node.get("anyOf", node.get("oneOf"))
        if isinstance(branches, list):
            return any(self.matches(value, branch, depth + 1) for branch in branches)
        kind = node.get("type")
        kinds = kind if isinstance(kind, list) else [kind]
        if isinstance(value, dict):
            properties = node.get("properties")
            if "object" not in kinds and properties is None:
                return False
            if not isinstance(properties, dict):
                return True
            if any(key not in properties for key in value):
                return False
            for name, prop in properties.items():
                tag = prop.get("enum") if isinstance(prop, dict) else None
                if isinstance(tag, list) and len(tag) == 1 and value.get(name, tag[0]) != tag[0]:
                    return False
            return True
        if isinstance(value, list):
            return "array" in kinds
        return False

    def accepts_null(self, node: Any, depth: int) -> bool:
        if depth > 64 or not isinstance(node, dict):
            return True
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = def_name(ref)
            return name is None or self.accepts_null(self.defs.get(name), depth + 1)
        if accepts_null(node):
            return True
        if not ({"type", "enum", "const", "anyOf", "oneOf", "$ref", "allOf"} & node.keys()):
            return True  # a schema that accepts anything
        return any(self.accepts_null(b, depth + 1) for b in node.get("oneOf", ()))
