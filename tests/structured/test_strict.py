"""The strict-mode transform against OpenAI's published rules, over families of types."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import uuid
from typing import Annotated, Any, Literal, Optional, TypedDict

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmfast.structured import output_spec, to_strict
from llmfast.testing.schema_values import schema_value
from tests.structured.strict_rules import strict_violations


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


LEAVES: list[Any] = [
    int,
    str,
    float,
    bool,
    datetime.timedelta,
    datetime.date,
    uuid.UUID,
    Color,
    Level,
    Literal["a", "b", "c"],
    Annotated[int, msgspec.Meta(ge=0, le=100)],
    Annotated[str, msgspec.Meta(min_length=1, max_length=20)],
    Annotated[float, msgspec.Meta(gt=0.0)],
    Annotated[list[int], msgspec.Meta(min_length=1, max_length=4)],
]

_counter = iter(range(10**9))


def _name(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


@st.composite
def field_types(draw: st.DrawFn, depth: int = 0) -> Any:
    # Within strict mode's 10 levels of nesting (a deeper type is sent non-strict:
    # test_nesting_past_the_limit_is_sent_non_strict).
    choices = ["leaf", "leaf", "list", "optional"] if depth < 5 else ["leaf"]
    if depth < 3:
        choices += ["struct", "dataclass", "typeddict", "union"]
    kind = draw(st.sampled_from(choices))
    if kind == "leaf":
        return draw(st.sampled_from(LEAVES))
    if kind == "list":
        return list[draw(field_types(depth + 1))]  # type: ignore[misc]
    if kind == "optional":
        return Optional[draw(field_types(depth + 1))]  # noqa: UP045
    if kind == "union":
        a = draw(struct_types(depth + 1, tag=True))
        b = draw(struct_types(depth + 1, tag=True))
        return a | b
    if kind == "struct":
        return draw(struct_types(depth + 1))
    if kind == "dataclass":
        return draw(dataclass_types(depth + 1))
    return draw(typeddict_types(depth + 1))


@st.composite
def fields(draw: st.DrawFn, depth: int) -> list[tuple[str, Any, bool]]:
    count = draw(st.integers(1, 4))
    names = draw(st.lists(st.sampled_from("abcdefgh"), min_size=count, max_size=count, unique=True))
    return [(f"f_{name}", draw(field_types(depth)), draw(st.booleans())) for name in names]


def _default_for(tp: Any) -> Any:
    try:
        return msgspec.convert(schema_value(msgspec.json.schema(tp), 1, nulls=False), tp)
    except (msgspec.ValidationError, TypeError):
        return None


@st.composite
def struct_types(draw: st.DrawFn, depth: int = 0, tag: bool = False) -> Any:
    spec = draw(fields(depth))
    required = [(n, t) for n, t, optional in spec if not optional]
    optional = [(n, t, _default_for(t)) for n, t, is_opt in spec if is_opt]
    scalar = (int, str, float, bool, enum.Enum, datetime.date, uuid.UUID)
    optional = [(n, t, d) for n, t, d in optional if isinstance(d, scalar)]
    return msgspec.defstruct(
        _name("S"), [*required, *optional], tag=tag or None, forbid_unknown_fields=False
    )


@st.composite
def dataclass_types(draw: st.DrawFn, depth: int = 0) -> Any:
    spec = draw(fields(depth))
    items: list[Any] = [(n, t) for n, t, optional in spec if not optional]
    for name, tp, optional in spec:
        if optional:
            default = _default_for(tp)
            if default is not None and isinstance(default, (int, str, float, bool)):
                items.append((name, tp, dataclasses.field(default=default)))
    return dataclasses.make_dataclass(_name("D"), items)


@st.composite
def typeddict_types(draw: st.DrawFn, depth: int = 0) -> Any:
    spec = draw(fields(depth))
    return TypedDict(_name("T"), {n: t for n, t, _ in spec})  # type: ignore[operator]


TOP = st.one_of(
    struct_types(),
    dataclass_types(),
    typeddict_types(),
    field_types().map(lambda t: list[t]),  # type: ignore[valid-type]
    st.sampled_from(LEAVES),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TOP)
def test_every_msgspec_schema_of_the_family_is_made_strict(tp: Any) -> None:
    spec = output_spec(tp)
    assert spec.strict.strict, (tp, spec.strict.reasons)
    assert strict_violations(spec.strict.schema) == [], spec.strict.schema


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TOP, st.integers(0, 10**6))
def test_any_value_the_strict_schema_allows_decodes(tp: Any, seed: int) -> None:
    """A value made from the strict schema (nulls for optional fields included) parses;
    dropping the added nulls gives back the fields' defaults."""
    spec = output_spec(tp)
    schema = spec.strict.schema
    original = msgspec.json.encode(spec.schema).decode()
    if any(f'"{word}"' in original for word in ("pattern", "minLength", "maxLength")):
        return  # constraints strict mode can't express live in the description only
    value = schema_value(schema, seed)
    try:
        spec.parse(msgspec.json.encode(value))
    except Exception as exc:
        raise AssertionError((msgspec.json.schema(tp), value)) from exc


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TOP, st.integers(0, 10**6))
def test_instances_round_trip(tp: Any, seed: int) -> None:
    """An instance of the type, encoded as the model would send it, decodes equal."""
    try:
        instance = msgspec.convert(schema_value(msgspec.json.schema(tp), seed), tp)
    except msgspec.ValidationError:
        return  # the generator can't satisfy every constraint (e.g. a union's tag)
    spec = output_spec(tp)
    wire = {"value": instance} if spec.wrapped else instance
    assert spec.parse(msgspec.json.encode(wire)) == instance


def test_the_validator_catches_what_strict_mode_rejects() -> None:
    assert strict_violations({"type": "object", "properties": {"a": {"type": "string"}}})
    assert strict_violations({"anyOf": [{"type": "object"}]})
    bad_default = {
        "type": "object",
        "properties": {"a": {"type": "integer", "default": 1}},
        "required": ["a"],
        "additionalProperties": False,
    }
    assert strict_violations(bad_default)
    assert strict_violations(to_strict(bad_default).schema) == []


def test_optional_fields_become_required_and_nullable_and_keep_their_default() -> None:
    class Item(msgspec.Struct):
        name: str
        qty: int = 1
        note: str | None = None

    spec = output_spec(Item)
    props = spec.strict.schema["properties"]
    assert spec.strict.schema["required"] == ["name", "qty", "note"]
    assert props["qty"]["type"] == ["integer", "null"]
    assert "default: 1" in props["qty"]["description"]
    assert spec.parse('{"name": "a", "qty": null, "note": null}') == Item("a", 1, None)
    assert spec.parse('{"name": "a", "qty": 3, "note": "x"}') == Item("a", 3, "x")


def test_unsupported_keywords_move_into_the_description() -> None:
    schema = {
        "type": "object",
        "properties": {
            "code": {"type": "string", "minLength": 2, "format": "iban", "description": "x"},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        },
        "required": ["code", "tags"],
    }
    strict = to_strict(schema)
    assert strict.strict
    code = strict.schema["properties"]["code"]
    assert code == {"type": "string", "description": "x (minLength: 2; format: 'iban')"}
    assert "uniqueItems" in strict.schema["properties"]["tags"]["description"]
    assert strict_violations(strict.schema) == []


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        (dict[str, int], "free-form"),
        ({"type": "object"}, "free-form"),
        ({"type": "object", "properties": {"a": {"not": {"type": "null"}}}}, "'not'"),
        ({"anyOf": [{"type": "string"}, {"type": "integer"}]}, None),
    ],
)
def test_what_cannot_be_strict_is_sent_non_strict_with_the_reason(
    output: Any, reason: str | None
) -> None:
    spec = output_spec(output)
    if reason is None:  # a root union is wrapped in an object: strict after all
        assert spec.strict.strict
        assert spec.wrapped
        return
    assert not spec.strict.strict
    assert reason in " ".join(spec.strict.reasons)
    assert spec.response_format()["json_schema"]["strict"] is False


def test_specs_are_built_once_per_type() -> None:
    class Point(msgspec.Struct):
        x: int
        y: int

    assert output_spec(Point) is output_spec(Point)
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert output_spec(schema) is output_spec(dict(schema))


def test_nesting_past_the_limit_is_sent_non_strict() -> None:
    deep: Any = int
    for _ in range(11):
        deep = list[deep]
    spec = output_spec(deep)
    assert not spec.strict.strict
    assert "nesting deeper than 10 levels" in spec.strict.reasons[0]
    assert output_spec(list[list[int]]).strict.strict
