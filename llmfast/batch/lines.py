"""Reading a JSON Lines file of batch items (the input of ``llmfast batch``).

Line ``n`` is item ``n - 1``, so that an output record's ``index`` points at its line.
A UTF-8 byte order mark and blank lines at the end of the file are tolerated; a blank
line in the middle is an error (skipping it would shift every later index). Problems are
reported as ``line 3: not JSON``, not as the decoder's byte offsets.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import msgspec

from llmfast.batch.items import NO_MODEL, to_chat_request
from llmfast.errors import ConfigurationError

__all__ = ["InputLineError", "check_line", "decode_line", "read_lines"]

_BOM = b"\xef\xbb\xbf"
_DECODER = msgspec.json.Decoder()


class InputLineError(ConfigurationError):
    """A line of a batch input file that is not a valid item.

    Attributes:
        line: the line number (1-based).
        problem: what is wrong, without the line number.
    """

    def __init__(self, line: int, problem: str) -> None:
        self.line = line
        self.problem = problem
        super().__init__(f"line {line}: {problem}")


def read_lines(path: str) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` for every line of the file, without a leading byte order
    mark; blank lines are held back until a line with content follows, so trailing ones
    never come out."""
    blank: list[tuple[int, bytes]] = []
    with open(path, "rb") as file:
        for number, line in enumerate(file, 1):
            if number == 1 and line.startswith(_BOM):
                line = line[len(_BOM) :]
            if not line.strip():
                blank.append((number, line))
                continue
            if blank:
                yield from blank
                blank.clear()
            yield number, line


def decode_line(number: int, line: bytes) -> Any:
    """The JSON value of one line; raises ``InputLineError``."""
    if not line.strip():
        raise InputLineError(number, "empty line (only blank lines at the end are allowed)")
    try:
        return _DECODER.decode(line)
    except msgspec.DecodeError as exc:
        raise InputLineError(number, _not_json(line, exc)) from None


def check_line(number: int, line: bytes, defaults: Mapping[str, Any]) -> Any:
    """Decode and validate one line as a batch item (the item is line ``number - 1``);
    returns the decoded item or raises ``InputLineError``."""
    item = decode_line(number, line)
    try:
        to_chat_request(item, defaults, number - 1)
    except ConfigurationError as exc:
        problem = str(exc).removeprefix(f"item {number - 1}: ")
        if problem == NO_MODEL:
            problem = 'no model: pass --model, set LLMFAST_MODEL or give "model"'
        raise InputLineError(number, problem) from None
    except TypeError:  # a field of a message of the wrong type
        raise InputLineError(number, "messages must be a list of objects with a role") from None
    return item


def _not_json(line: bytes, exc: msgspec.DecodeError) -> str:
    text = line.strip()
    if "truncated" in str(exc):
        return "not JSON (the value is cut short)"
    if "trailing characters" in str(exc):
        return "not JSON (more than one value on the line)"
    if text[:1] not in b'"[{' and not text[:1].isdigit() and text[:1] not in b"-tfn":
        return 'not JSON (write a prompt as a JSON string: "Say hello")'
    return "not JSON"
