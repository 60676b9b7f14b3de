"""Incremental parsing of a JSON value that arrives in pieces.

[PartialJSON][llmfast.structured.partial.PartialJSON] is fed text as it streams and can
show, at any moment, the value so far: every member and item that has arrived, strings
as far as they go. It never re-reads what it has parsed: the total work is linear in
the length of the text, and a snapshot copies only the containers still open (the
completed parts are shared between snapshots, so they must not be mutated).

What a snapshot shows of a prefix: open objects and arrays with their complete members;
a string (value, not key) up to its last complete character; numbers, ``true``,
``false`` and ``null`` only once complete (a number's prefix is another number); an
object key only once its value has started.
"""

from __future__ import annotations

import re
from json import loads as _json_loads
from typing import Any

__all__ = ["PartialJSON", "PartialJSONError"]

_STRING_RUN = re.compile(r'[^"\\\x00-\x1f]+')
_NUMBER_CHARS = frozenset("0123456789+-.eE")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")
_TOKEN = re.compile(
    r'[ \t\n\r]*(?:"([^"\\\x00-\x1f]*(?:\\.[^"\\\x00-\x1f]*)*)"'
    r"|(-?[0-9][0-9.eE+-]*|true|false|null)(?=[ \t\n\r,\]}])|([^ \t\n\r]))",
    re.DOTALL,
)
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_LITERALS = {"true": True, "false": False, "null": None}
_MISSING: Any = object()

# Parser states.
_VALUE = 0  # expecting a value
_AFTER_VALUE = 1  # after a value: ',' or a closer
_KEY = 2  # in an object, expecting a key (or '}' right after '{')
_COLON = 3  # after a key
_STRING = 4  # inside a string
_SCALAR = 5  # inside a number or literal
_DONE = 6


class PartialJSONError(ValueError):
    """The text is not the prefix of any JSON value (``position`` says where)."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at character {position}")
        self.position = position


class _Frame:
    __slots__ = ("container", "is_object", "key")

    def __init__(self, container: Any, is_object: bool) -> None:
        self.container = container
        self.is_object = is_object
        self.key: Any = _MISSING


class PartialJSON:
    """A JSON value parsed as it arrives: [feed][llmfast.structured.partial.PartialJSON.feed]
    pieces of text, read [snapshot][llmfast.structured.partial.PartialJSON.snapshot]."""

    __slots__ = (
        "_empty_open",
        "_escape",
        "_is_key",
        "_position",
        "_result",
        "_scalar",
        "_stack",
        "_state",
        "_string",
        "closed_containers",
    )

    def __init__(self) -> None:
        self._stack: list[_Frame] = []
        self._state = _VALUE
        self._string: list[str] = []  # the open string's pieces
        self._is_key = False
        self._escape = ""  # an escape sequence cut by the end of a piece
        self._scalar: list[str] = []
        self._result: Any = _MISSING
        self._position = 0
        self._empty_open = False  # just after '[' or '{' (a closer is allowed)
        self.closed_containers: set[int] = set()
        """The ids of the objects and arrays that are complete: they are the same
        objects in every later snapshot, so work done on one can be kept."""

    @property
    def done(self) -> bool:
        """Whether a whole value has been parsed."""
        return self._state == _DONE

    def feed(self, text: str) -> None:
        """Parse the next piece.

        Raises:
            PartialJSONError: the text so far is not the beginning of a JSON value.
        """
        i = 0
        n = len(text)
        token = _TOKEN.match
        while i < n:
            state = self._state
            if state == _STRING:
                i = self._in_string(text, i, n)
                continue
            if state == _SCALAR:
                c = text[i]
                if c in _NUMBER_CHARS or c.isalpha():
                    start = i
                    while i < n and (text[i] in _NUMBER_CHARS or text[i].isalpha()):
                        i += 1
                    self._scalar.append(text[start:i])
                    continue
                self._end_scalar(i)
                continue
            match = token(text, i)
            if match is None:  # only whitespace left
                break
            i = match.end()
            string, scalar, c = match.groups()
            if string is not None:  # a whole string within this piece
                if "\\" in string:
                    string = self._unescape(string, i)
                self._empty_open = False
                if state == _KEY:
                    self._stack[-1].key = string
                    self._state = _COLON
                elif state == _VALUE:
                    self._complete(string)
                else:
                    raise PartialJSONError("a string where none may be", self._position + i)
            elif scalar is not None:  # a whole number or literal within this piece
                if state != _VALUE:
                    raise PartialJSONError(f"unexpected {scalar[:20]!r}", self._position + i)
                self._empty_open = False
                self._scalar = [scalar]
                self._end_scalar(i)
            elif state == _VALUE:
                self._value_start(c, i - 1)
            elif state == _AFTER_VALUE:
                self._after_value(c, i - 1)
            elif state == _KEY:
                if c == '"':
                    self._state = _STRING
                    self._is_key = True
                    self._string = []
                elif c == "}" and self._empty_open:
                    self._close(c, i - 1)
                else:
                    raise PartialJSONError(f"expected a key, found {c!r}", self._position + i)
                self._empty_open = False
            elif state == _COLON:
                if c != ":":
                    raise PartialJSONError(f"expected ':', found {c!r}", self._position + i)
                self._state = _VALUE
            else:
                raise PartialJSONError(f"text after the value: {c!r}", self._position + i)
        self._position += n

    def _unescape(self, string: str, i: int) -> str:
        try:
            value: str = _json_loads(f'"{string}"')
        except ValueError:
            raise PartialJSONError("an invalid escape in a string", self._position + i) from None
        return value

    def close(self) -> Any:
        """The whole value, at the end of the text; raises if it is incomplete."""
        if self._state == _SCALAR and not self._stack:
            self._end_scalar(0)
        if self._state != _DONE:
            raise PartialJSONError("the JSON value is incomplete", self._position)
        return self._result

    # -- snapshots ------------------------------------------------------------------------

    def snapshot(self) -> Any:
        """The value so far (``None`` before any of it); see the module for what shows."""
        if self._state == _DONE:
            return self._result
        stack = self._stack
        inner: Any = _MISSING
        if self._state == _STRING and not self._is_key:
            parts = self._string
            if parts and len(parts[-1]) == 1 and 0xD800 <= ord(parts[-1]) <= 0xDBFF:
                parts = parts[:-1]  # half of a surrogate pair: the other half may follow
            inner = "".join(parts)
        if not stack:
            return None if inner is _MISSING else inner
        for frame in reversed(stack):
            container = frame.container
            if frame.is_object:
                members = dict(container)
                if inner is not _MISSING and frame.key is not _MISSING:
                    members[frame.key] = inner
                inner = members
            else:
                items = list(container)
                if inner is not _MISSING:
                    items.append(inner)
                inner = items
        return inner

    # -- the state machine ---------------------------------------------------------------

    def _value_start(self, c: str, i: int) -> None:
        if c == "{":
            self._push(_Frame({}, True))
            self._state = _KEY
            self._empty_open = True
        elif c == "[":
            self._push(_Frame([], False))
            self._state = _VALUE
            self._empty_open = True
        elif c == '"':
            self._state = _STRING
            self._is_key = False
            self._string = []
            self._empty_open = False
        elif c in _NUMBER_CHARS or c in "tfn":
            self._state = _SCALAR
            self._scalar = [c]
            self._empty_open = False
        elif c == "]" and self._empty_open and self._stack and not self._stack[-1].is_object:
            self._close(c, i)
        else:
            raise PartialJSONError(f"expected a value, found {c!r}", self._position + i)

    def _push(self, frame: _Frame) -> None:
        if len(self._stack) >= 512:
            raise PartialJSONError("nested deeper than 512 levels", self._position)
        self._stack.append(frame)

    def _after_value(self, c: str, i: int) -> None:
        if not self._stack:
            raise PartialJSONError(f"text after the value: {c!r}", self._position + i)
        frame = self._stack[-1]
        if c == ",":
            self._state = _KEY if frame.is_object else _VALUE
            self._empty_open = False
        elif c in "]}":
            self._close(c, i)
        else:
            raise PartialJSONError(f"expected ',' or a closer, found {c!r}", self._position + i)

    def _close(self, c: str, i: int) -> None:
        frame = self._stack[-1]
        if (c == "}") != frame.is_object:
            raise PartialJSONError(f"mismatched {c!r}", self._position + i)
        self._stack.pop()
        self._empty_open = False
        self.closed_containers.add(id(frame.container))
        self._complete(frame.container)

    def _complete(self, value: Any) -> None:
        """A value ended: put it in its container (or make it the result)."""
        stack = self._stack
        if not stack:
            self._result = value
            self._state = _DONE
            return
        frame = stack[-1]
        if frame.is_object:
            frame.container[frame.key] = value
            frame.key = _MISSING
        else:
            frame.container.append(value)
        self._state = _AFTER_VALUE

    def _end_scalar(self, i: int) -> None:
        token = "".join(self._scalar)
        value: Any
        if token in _LITERALS:
            value = _LITERALS[token]
        elif _NUMBER.match(token):
            value = float(token) if any(ch in token for ch in ".eE") else int(token)
        else:
            raise PartialJSONError(f"not a JSON value: {token[:40]!r}", self._position + i)
        self._complete(value)

    def _in_string(self, text: str, i: int, n: int) -> int:
        parts = self._string
        if self._escape:
            i = self._finish_escape(text, i, n)
            if self._escape:
                return n
        while i < n:
            match = _STRING_RUN.match(text, i)
            if match is not None:
                parts.append(match.group())
                i = match.end()
                if i >= n:
                    return n
            c = text[i]
            if c == '"':
                value = "".join(parts)
                self._string = []
                if self._is_key:
                    self._stack[-1].key = value
                    self._state = _COLON
                else:
                    self._complete(value)
                return i + 1
            if c != "\\":
                raise PartialJSONError("a control character in a string", self._position + i)
            self._escape = "\\"
            i = self._finish_escape(text, i + 1, n)
            if self._escape:
                return n
        return n

    def _finish_escape(self, text: str, i: int, n: int) -> int:
        """Continue the escape sequence in ``self._escape`` from ``text[i:]``."""
        escape = self._escape
        if len(escape) == 1:
            if i >= n:
                return n
            c = text[i]
            i += 1
            if c in _ESCAPES:
                self._string.append(_ESCAPES[c])
                self._escape = ""
                return i
            if c != "u":
                raise PartialJSONError(f"invalid escape \\{c}", self._position + i)
            escape = "\\u"
        need = 6 - len(escape)
        take = text[i : i + need]
        escape += take
        i += len(take)
        if len(escape) < 6:
            self._escape = escape
            return n
        digits = escape[2:]
        try:
            code = int(digits, 16)
        except ValueError:
            raise PartialJSONError(f"invalid escape \\u{digits}", self._position + i) from None
        parts = self._string
        if 0xDC00 <= code <= 0xDFFF and parts and len(parts[-1]) == 1:
            high = ord(parts[-1])
            if 0xD800 <= high <= 0xDBFF:
                parts[-1] = chr(0x10000 + ((high - 0xD800) << 10) + (code - 0xDC00))
                self._escape = ""
                return i
        parts.append(chr(code))
        self._escape = ""
        return i
