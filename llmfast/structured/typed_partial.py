"""Typed partial objects: a [PartialJSON][llmfast.structured.partial.PartialJSON]
snapshot in the shape of the output type.

A partial of ``Invoice`` is an instance of a generated Struct named ``Invoice`` whose
fields all default to ``None`` (a field that hasn't arrived is ``None``), with nested
Structs, dataclasses and lists of them made partial the same way; a ``TypedDict`` stays
a dict, scalars are as they arrived (strings growing; an ``Enum`` or a ``datetime`` as
the raw value until it is complete and valid). A completed object or array is converted
once and reused by every later partial, so the conversions of a whole stream, like its
parsing, take time linear in the output's length (plus the open containers' width per
chunk).
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Any, Union, get_args, get_origin, get_type_hints

import msgspec

__all__ = ["PartialMaker", "partial_type"]

_partial_types: dict[Any, Any] = {}
_PLAIN = frozenset({Any, str, int, float, bool})


def partial_type(tp: Any) -> Any:
    """The Struct class whose instances are the partials of the Struct or dataclass
    ``tp`` (every field optional, ``None`` until it arrives)."""
    made = _partial_types.get(tp)
    if made is None:
        names = [name for _, name, _ in _fields(tp)]
        made = msgspec.defstruct(
            getattr(tp, "__name__", "Partial"),
            [(name, Any, None) for name in names],
            kw_only=True,
            repr_omit_defaults=True,
        )
        _partial_types[tp] = made
    return made


_field_lists: dict[Any, list[tuple[str, str, Any]]] = {}
_field_maps: dict[Any, dict[str, tuple[str, Any]]] = {}


def _fields(tp: Any) -> list[tuple[str, str, Any]]:
    """(wire name, attribute name, type) of each field of a Struct or dataclass (cached:
    reading a Struct's fields evaluates its annotations)."""
    found = _field_lists.get(tp)
    if found is None:
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            found = [(f.encode_name, f.name, f.type) for f in msgspec.structs.fields(tp)]
        else:
            hints = get_type_hints(tp)
            found = [(f.name, f.name, hints.get(f.name, Any)) for f in dataclasses.fields(tp)]
        _field_lists[tp] = found
    return found


def _field_map(tp: Any) -> dict[str, tuple[str, Any]]:
    found = _field_maps.get(tp)
    if found is None:
        found = _field_maps[tp] = {wire: (attr, ftype) for wire, attr, ftype in _fields(tp)}
    return found


def _is_record(tp: Any) -> bool:
    return isinstance(tp, type) and (issubclass(tp, msgspec.Struct) or dataclasses.is_dataclass(tp))


class PartialMaker:
    """Converts the snapshots of one stream into typed partials of ``tp``.

    ``closed`` is the parser's set of completed containers' ids: their conversions are
    kept (keyed by id, the snapshot objects being alive as long as the parser is).
    """

    def __init__(self, tp: Any, closed: set[int]) -> None:
        self._tp = tp
        self._closed = closed
        self._done: dict[int, Any] = {}

    def make(self, value: Any) -> Any:
        """The typed partial of one snapshot."""
        return self._convert(value, self._tp, 0)

    def _convert(self, value: Any, tp: Any, depth: int) -> Any:
        if value is None or depth > 64:
            return value
        key = id(value)
        done = self._done.get(key)
        if done is not None:
            return done
        out = self._build(value, tp, depth)
        if key in self._closed and isinstance(value, (dict, list)):
            self._done[key] = out
        return out

    def _build(self, value: Any, tp: Any, depth: int) -> Any:
        origin = get_origin(tp)
        if origin is typing.Annotated:
            return self._convert(value, get_args(tp)[0], depth)
        if origin in (Union, types.UnionType):
            return self._convert(value, _pick(value, get_args(tp)), depth)
        if isinstance(value, dict):
            if _is_record(tp):
                fields = _field_map(tp)
                cls = partial_type(tp)
                members = {}
                for wire, item in value.items():
                    found = fields.get(wire)
                    if found is not None:
                        members[found[0]] = self._convert(item, found[1], depth + 1)
                return cls(**members)
            if origin in (dict, typing.Mapping) or typing.is_typeddict(tp):
                item_type = get_args(tp)[1] if origin is not None and get_args(tp) else Any
                hints = get_type_hints(tp) if typing.is_typeddict(tp) else {}
                return {
                    k: self._convert(v, hints.get(k, item_type), depth + 1)
                    for k, v in value.items()
                }
            return value
        if isinstance(value, list):
            args = get_args(tp)
            item_type = args[0] if args and origin in (list, tuple, set, frozenset) else Any
            done = self._done
            convert = self._convert
            out = []
            for item in value:  # most items are complete: look them up inline
                if isinstance(item, (dict, list)):
                    hit = done.get(id(item))
                    out.append(hit if hit is not None else convert(item, item_type, depth + 1))
                elif item_type in _PLAIN or item is None:
                    out.append(item)
                else:
                    out.append(convert(item, item_type, depth + 1))
            return out
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            try:
                return tp(value)
            except ValueError:
                return value  # not a whole value yet
        return value


def _pick(value: Any, options: tuple[Any, ...]) -> Any:
    """The union member a partial value belongs to (by its tag, its keys, its kind)."""
    candidates = [o for o in options if o is not type(None)]
    if isinstance(value, dict):
        records = [o for o in candidates if _is_record(o)]
        for record in records:
            config = getattr(record, "__struct_config__", None)
            tag_field = getattr(config, "tag_field", None)
            if tag_field is not None and value.get(tag_field) == getattr(config, "tag", None):
                return record
        for record in records:
            names = {wire for wire, _, _ in _fields(record)}
            if set(value) <= names:
                return record
    if isinstance(value, list):
        for option in candidates:
            if get_origin(option) in (list, tuple, set, frozenset):
                return option
    return candidates[0] if len(candidates) == 1 else Any
