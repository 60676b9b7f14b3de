"""Incremental partial-JSON parsing: every chunking gives the prefix's value."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmfast.structured.partial import PartialJSON, PartialJSONError

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


def reference(prefix: str) -> Any:
    """What a prefix shows, computed the slow, independent way: complete the prefix
    (drop an unfinished number/literal/key, close an open value string and the open
    containers) and hand it to ``json.loads``."""
    stack: list[str] = []  # '{' or '['
    in_string = False
    string_start = 0
    escaped = False
    for i, c in enumerate(prefix):
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
            string_start = i
        elif c in "{[":
            stack.append(c)
        elif c in "}]":
            stack.pop()
    text = prefix
    if in_string:
        # Is the open string a key? Look at what precedes it.
        before = text[:string_start].rstrip()
        is_key = bool(stack) and stack[-1] == "{" and before[-1:] in ("{", ",")
        if is_key:
            text = before
        else:
            body = _drop_cut_escape(text[string_start + 1 :])
            text = text[: string_start + 1] + body + '"'
    else:
        stripped = text
        # An unfinished scalar at the end (no delimiter after it yet) is not shown.
        match = re.search(r"[-+0-9.eEa-z]+\Z", stripped)
        if match and stack:
            stripped = stripped[: match.start()]
        elif match and not stack:
            return None  # a top-level scalar shows only at close()
        text = stripped
    while True:
        stripped = text.rstrip()
        if stripped.endswith(","):
            text = stripped[:-1]
        elif stripped.endswith(":"):
            # drop the key and its colon
            text = re.sub(r',?\s*"(?:[^"\\]|\\.)*"\s*:\Z', "", stripped)
        elif stack and stack[-1] == "{" and re.search(r'[{,]\s*"(?:[^"\\]|\\.)*"\Z', stripped):
            text = re.sub(r',?\s*"(?:[^"\\]|\\.)*"\Z', "", stripped)
        else:
            break
    closers = "".join("}" if c == "{" else "]" for c in reversed(stack))
    if not text.strip():
        return None
    return json.loads(text + closers)


def _escape_starts(body: str) -> list[int]:
    """Where the escape sequences of a JSON string body start."""
    starts, i = [], 0
    while i < len(body):
        if body[i] == "\\":
            starts.append(i)
            i += 2
        else:
            i += 1
    return starts


def _drop_cut_escape(body: str) -> str:
    """``body`` without an escape sequence cut short at its end, nor the high half of a
    surrogate pair whose low half may follow."""
    starts = _escape_starts(body)
    if starts:
        last = starts[-1]
        tail = body[last:]
        if tail == "\\" or (tail.startswith("\\u") and len(tail) < 6):
            body = body[:last]
            starts.pop()
    if starts:
        last = starts[-1]
        if re.fullmatch(r"\\u[dD][89abAB][0-9a-fA-F]{2}", body[last:]):
            body = body[:last]
    return body


@st.composite
def documents_and_cuts(draw: st.DrawFn) -> tuple[str, list[int]]:
    value = draw(JSON_VALUES)
    text = json.dumps(
        value, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 1]))
    )
    cuts = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=12))))
    return text, cuts


@settings(max_examples=300, deadline=None)
@given(documents_and_cuts())
def test_the_snapshot_after_every_chunk_is_the_prefix_value(case: tuple[str, list[int]]) -> None:
    text, cuts = case
    parser = PartialJSON()
    last = 0
    for cut in [*cuts, len(text)]:
        parser.feed(text[last:cut])
        last = cut
        expected = reference(text[:cut])
        if cut == len(text) and isinstance(json.loads(text), (dict, list)):
            expected = json.loads(text)
        assert parser.snapshot() == expected, text[:cut]
    assert parser.close() == json.loads(text)


@settings(max_examples=200, deadline=None)
@given(JSON_VALUES, st.data())
def test_any_split_gives_the_same_value(value: Any, data: st.DataObject) -> None:
    text = json.dumps(value)
    parser = PartialJSON()
    i = 0
    while i < len(text):
        step = data.draw(st.integers(1, 8))
        parser.feed(text[i : i + step])
        i += step
    assert parser.close() == value


@pytest.mark.parametrize(
    "bad",
    [
        '{"a" 1}',
        "[1,\f2]",
        "[-]",
        "[1,,2]",
        '{"a":1]',
        "[1 2]",
        '"\\x"',
        '{"a":tru}',
        '"a\nb"',
        "[1]x",
        "{1:2}",
    ],
)
def test_what_is_no_json_prefix_is_an_error(bad: str) -> None:
    parser = PartialJSON()
    with pytest.raises(PartialJSONError):
        parser.feed(bad)
        parser.close()


def test_strings_grow_and_numbers_show_once_complete() -> None:
    parser = PartialJSON()
    parser.feed('{"name": "Ad')
    assert parser.snapshot() == {"name": "Ad"}
    parser.feed('a", "n": 12')
    assert parser.snapshot() == {"name": "Ada"}
    parser.feed('3, "items": [{"x": "\\u00')
    assert parser.snapshot() == {"name": "Ada", "n": 123, "items": [{"x": ""}]}
    parser.feed('e9"}]}')
    assert parser.done
    assert parser.close() == {"name": "Ada", "n": 123, "items": [{"x": "é"}]}


def test_completed_parts_are_shared_between_snapshots() -> None:
    parser = PartialJSON()
    parser.feed('{"done": {"a": [1, 2]}, "open": [')
    first = parser.snapshot()
    parser.feed("3, ")
    second = parser.snapshot()
    assert first["done"] is second["done"]
    assert second["open"] == [3]
