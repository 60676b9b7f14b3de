"""Tools from Python functions: definitions from signatures, validated arguments."""

from __future__ import annotations

import asyncio
import enum
import threading
from typing import Literal

import msgspec
import pytest

from llmfast.structured.tools import FunctionTool, ToolArgumentsError, parse_docstring, tool
from tests.structured.strict_rules import strict_violations


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


class Place(msgspec.Struct):
    city: str
    country: str | None = None


@tool
def get_weather(place: Place, unit: Unit = Unit.C, days: int = 1) -> dict[str, object]:
    """Get the weather forecast for a place.

    Args:
        place: Where to look.
        unit: The temperature unit.
        days: How many days ahead,
            counting today.
    """
    return {"city": place.city, "unit": unit.value, "days": days}


def test_the_definition_comes_from_the_signature_and_the_docstring() -> None:
    fn = get_weather.definition.function
    assert fn.name == "get_weather"
    assert fn.description == "Get the weather forecast for a place."
    assert fn.strict is True
    assert fn.parameters is not None
    assert strict_violations(fn.parameters) == []
    props = fn.parameters["properties"]
    assert props["days"]["description"].startswith("How many days ahead, counting today.")
    assert props["unit"]["anyOf"][0]["enum"] == ["celsius", "fahrenheit"]
    assert fn.parameters["required"] == ["place", "unit", "days"]


async def test_arguments_arrive_decoded_into_the_parameter_types() -> None:
    result = await get_weather.call(
        '{"place": {"city": "Oslo", "country": null}, "unit": "fahrenheit", "days": null}'
    )
    assert result == {"city": "Oslo", "unit": "fahrenheit", "days": 1}
    kwargs = get_weather.parse_arguments(
        '{"place": {"city": "Rome", "country": "IT"}, "unit": null, "days": 3}'
    )
    assert kwargs == {"place": Place("Rome", "IT"), "unit": Unit.C, "days": 3}


@pytest.mark.parametrize(
    ("arguments", "path"),
    [
        ('{"place": {"city": 5}}', "$.place.city"),
        ('{"place": {"city": "x"}, "days": "two"}', "$.days"),
        ('{"place": {"city": "x"}, "extra": 1}', None),
        ('{"place": ', None),
        ("{}", None),
    ],
)
def test_bad_arguments_are_a_typed_error_saying_where(arguments: str, path: str | None) -> None:
    with pytest.raises(ToolArgumentsError) as info:
        get_weather.parse_arguments(arguments)
    assert info.value.tool == "get_weather"
    if path is not None:
        assert info.value.path == path
        assert path in str(info.value)


async def test_sync_tools_run_in_a_thread_and_async_ones_on_the_loop() -> None:
    seen: list[str] = []

    @tool
    def blocking(x: int) -> int:
        seen.append(threading.current_thread().name)
        return x * 2

    @tool(name="doubler", timeout=5)
    async def doubling(x: int) -> int:
        seen.append(threading.current_thread().name)
        return x * 2

    assert await blocking.call('{"x": 2}') == 4
    assert await doubling.call('{"x": 3}') == 6
    assert seen[0] != threading.current_thread().name
    assert seen[1] == threading.current_thread().name
    assert doubling.name == "doubler"
    assert blocking(5) == 10  # still callable as the function it was


async def test_a_tool_past_its_timeout_raises_timeout_error() -> None:
    started = asyncio.Event()

    @tool(timeout=0.05)
    async def slow() -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    with pytest.raises(TimeoutError):
        await slow.call("")
    assert started.is_set()


def test_free_form_parameters_are_offered_non_strict() -> None:
    @tool
    def tag(labels: dict[str, str], mode: Literal["a", "b"] = "a") -> None:
        """Tag things."""

    assert tag.strict is False
    assert tag.definition.function.strict is None
    with pytest.raises(TypeError, match="can't be strict"):
        tool(strict=True)(tag.fn)


def test_what_cannot_be_a_tool_is_refused_at_definition() -> None:
    def variadic(*args: int) -> None: ...

    with pytest.raises(TypeError, match=r"\*args"):
        tool(variadic)
    assert isinstance(tool(lambda x=1: x), FunctionTool)


def test_docstring_styles() -> None:
    google = parse_docstring(
        "Do it.\n\nArgs:\n    a (int): first\n        more\n    b: second\n\nReturns:\n    x"
    )
    assert google == ("Do it.", {"a": "first more", "b": "second"})
    sphinx = parse_docstring("Do it.\n\n:param a: first\n:param int b: second\n:returns: x")
    assert sphinx == ("Do it.", {"a": "first", "b": "second"})
    numpy = parse_docstring(
        "Do it.\n\nParameters\n----------\na : int\n    first\nb : str\n    second\n"
    )
    assert numpy == ("Do it.", {"a": "first", "b": "second"})
