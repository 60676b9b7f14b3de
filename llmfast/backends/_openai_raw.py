"""OpenAI chat SSE read in raw mode: the events kept as the upstream's bytes, each as
its ``data:`` line (see ``llmfast.raw_events``).

Nearly every event of a stream is a text delta (or a reasoning text's, or, in a tool
call, a fragment of its arguments) whose bytes differ from the stream's other such
deltas only in that string: the same id, created, model, fingerprint, and the same
fields around it. The
stream's first event, the role with empty text (``"delta":{"role":"assistant",
"content":""}``, with or without ``"refusal":null``), foretells its text deltas: its
bytes with that delta made ``{"content":`` and ``}`` become the stream's template.
When the role event is shaped otherwise, or the deltas turn out not to fit (another
field, another byte, a tool call), the first plain delta decoded in full gives the
template instead: a wrong guess costs one read checked an event at a time.
OpenAI pads each event with a random top-level ``"obfuscation"`` string (hiding the
text's length; a field llmfast does not read), last in OpenAI's events and amid the
fields in Azure's: a template with it has a second slot there, which may hold any
string. (Which event gives a template, and its slots: ``_openai_templates``.)

Every later event that is the template with one non-empty JSON string in its slot
(and one in its padding slot) is that same JSON with another string: it stays bytes,
with no decode. A read's run of such events is checked in a few C calls for the
whole run, not a Python step per event (the slots cut out at once, the run rebuilt
from them and compared, msgspec reading each slot); a run that fails is looked at
one event at a time. Any other event (the role, a finish, usage, an error event,
a tool call's start, an event that differs in any other byte) is decoded in full at
once, so what is checked and tracked (an in-stream error, which choices were opened
and finished, malformed JSON) is exactly the typed path's. A read made only of whole
one-line events is cut at its line ends (``SSEDecoder.feed_lines``); any other, or
one with a line that is no ``data:`` field after all, goes through the exact decoder
(``feed_payloads``) and its events are checked the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import repeat
from operator import getitem, itemgetter
from typing import Any, cast

import msgspec

from llmfast.backends._http import ChunkParser, as_decode_error
from llmfast.backends._openai_templates import delta_template, padded, role_template
from llmfast.backends.sse import SSEDecoder, SSEEvent
from llmfast.errors import DecodeError, StreamEventError, StreamTruncatedError
from llmfast.raw_events import RawEvents
from llmfast.types import ChatCompletionChunk

__all__ = ["RawChatStreamParser"]

_decode_chunk = msgspec.json.Decoder(ChatCompletionChunk).decode
_decode_str = msgspec.json.Decoder(str).decode
_decode_strs = msgspec.json.Decoder(list[str]).decode
_decode_pairs = msgspec.json.Decoder(list[tuple[str, str]]).decode
_decode_any = msgspec.json.Decoder().decode

_first = itemgetter(0)
_DONE_LINE = b"data: [DONE]\n"
_DONE_FRAME = _DONE_LINE + b"\n"
_cut = cast(Callable[[bytes, slice], bytes], getitem)  # b[s] (the slot wrapper is slower)


class _NotPlain(Exception):
    """A line of a read taken as plain events is no ``data:`` field (a comment, an
    ``id``): the read goes through the exact decoder instead."""


class RawChatStreamParser(ChunkParser):
    """``feed`` returns a [`RawEvents`][llmfast.raw_events.RawEvents] per read."""

    __slots__ = ("_altered", "_feed", "_head", "_lines", "_pad", "_tail")

    end_marker = "[DONE]"

    def __init__(self, max_event_bytes: int | None = None) -> None:
        super().__init__()
        decoder = SSEDecoder(max_event_bytes)
        self._lines = decoder.feed_lines
        self._feed = decoder.feed_payloads
        # The stream's template for an event's line, once an event gave it:
        # "data: " head TEXT [pad PADDING] tail LF, held as (_head, _pad, _tail).
        self._head: bytes | None = None
        self._pad: bytes | None = None
        self._tail = b""
        self._altered = False  # a line kept was mended (invalid UTF-8 replaced)

    def feed(self, data: bytes) -> RawEvents:  # type: ignore[override]
        if self.failure is not None:
            raise self.failure
        events = RawEvents()
        try:
            lines = self._lines(data)
            if lines is None or not self._plain(lines, events, data):
                self._parse(self._feed(data), events)
        except Exception as exc:
            error = as_decode_error(exc, "stream data")
            if not events.lines:
                if error is exc:
                    raise
                raise error from exc
            self.failure = error  # raised once the events before it are passed on
        finally:
            if events.notable:
                self._note(events.notable.values())  # which choices opened and finished
        return events

    def _plain(self, lines: list[bytes], events: RawEvents, data: bytes) -> bool:
        """Classify the lines of a read of plain events into ``events``; False (and
        nothing kept) when one of them is no ``data:`` field after all."""
        head = self._head
        if len(lines) == 1 and head is not None and _fits(lines[0], head, self._pad, self._tail):
            events.lines.append(lines[0])  # one delta, the usual read of a live stream
            events._read = data
            events._size = len(data)
            return True
        template = head, self._pad, self._tail
        count = len(lines)
        try:
            end = lines.index(_DONE_LINE)
        except ValueError:
            end = count
        else:
            self.done = True
            lines = lines[:end]
        self._altered = False
        try:
            if lines:
                self._check(lines, events)
        except _NotPlain:
            self._head, self._pad, self._tail = template
            events.lines.clear()
            events.notable.clear()
            return False
        events.end = self.done
        if end >= count - 1 and not self._altered:  # the read is these events (and [DONE])
            events._read = data
            events._size = len(data) - (len(_DONE_FRAME) if end < count else 0)
        return True

    def _parse(self, items: list[bytes | SSEEvent], events: RawEvents) -> None:
        """A read the exact decoder took: its events made lines, then checked as a
        plain read's are."""
        lines: list[bytes] = []
        failure: Exception | None = None
        for item in items:
            if type(item) is bytes:
                if item == b"[DONE]":
                    self.done = True
                    break
                lines.append(b"data: " + item + b"\n")
                continue
            assert isinstance(item, SSEEvent)
            if item.data == "[DONE]":
                self.done = True
                break
            if item.event == "message":  # (data of several lines is sent as several)
                lines.append(b"data: " + item.data.encode().replace(b"\n", b"\ndata: ") + b"\n")
            elif item.event == "error":
                failure = StreamEventError(_any_or_text(item.data))
                break
            # pings and other named events are not chunks
        if lines:
            self._check(lines, events)
        if failure is not None:
            raise failure
        events.end = self.done

    def _check(self, lines: list[bytes], events: RawEvents) -> None:
        """Classify ``lines`` into ``events``; raise at the first bad one (after
        keeping those before it)."""
        start = 0
        if self._head is None:  # no template yet: decode until one gives it
            for line in lines:
                start += 1
                self._decoded(line, events)
                if self._head is not None:
                    break
        if start < len(lines):
            self._against_template(lines[start:] if start else lines, events)

    def _against_template(self, lines: list[bytes], events: RawEvents) -> None:
        """Keep the lines that are the template's deltas as they are; decode the
        others, in order. The lines up to the last one shaped like the template (a
        stream's finish and usage come after its texts) are checked in bulk
        (``_all_texts``, or ``_all_padded``), and one by one only when that fails."""
        if len(lines) <= 2:  # (below three lines the bulk check costs more than it saves)
            self._one_by_one(lines, events)
            return
        head, pad, tail = self._head or b"", self._pad, self._tail
        end = len(lines)
        while end and not _shaped(lines[end - 1], head, pad, tail):
            end -= 1
        if end:
            run = lines[:end] if end < len(lines) else lines
            if _all_texts(run, head, tail) if pad is None else _all_padded(run, head, pad, tail):
                events.lines += run
            else:  # one of them is not: find it, and decode what needs it
                self._one_by_one(run, events)
        if end < len(lines):
            self._one_by_one(lines[end:], events)

    def _one_by_one(self, lines: list[bytes], events: RawEvents) -> None:
        """``_against_template``, a line at a time."""
        append = events.lines.append
        head = self._head
        for line in lines:
            if head is not None and _fits(line, head, self._pad, self._tail):
                append(line)
                continue
            self._decoded(line, events)
            head = self._head  # (another template, from here on, if it gave one)

    def _decoded(self, line: bytes, events: RawEvents) -> None:
        """Decode ``line`` in full and keep it: notable, or the stream's template."""
        if not line.startswith(b"data: "):
            raise _NotPlain
        payload = line[6:-1]
        several = 10 in payload  # data of several lines (from the exact decoder)
        if several:
            payload = payload.replace(b"\ndata: ", b"\n")
        chunk, kept = _typed(payload)
        if chunk.error is not None:
            raise StreamEventError(chunk.error)
        if kept is not payload:  # mended: the line sent on is the mended payload's
            self._altered = True
            line = b"data: " + kept.replace(b"\n", b"\ndata: ") + b"\n"
        template = None if several else delta_template(kept, chunk)
        if template is None:
            events.notable[len(events.lines)] = chunk  # (noted at the read's end)
            if self._head is None and not several:
                template = role_template(kept, chunk)
        else:
            self._note((chunk,))  # a plain delta: not notable, but its choice is open
        if template is not None:
            head, pad, tail = padded(kept, *template)
            self._head, self._pad, self._tail = b"data: " + head, pad, tail + b"\n"
        events.lines.append(line)

    def finish(self, out: list[ChatCompletionChunk]) -> None:
        if not self.done:
            raise StreamTruncatedError("the event stream ended before [DONE]")


def _shaped(line: bytes, head: bytes, pad: bytes | None, tail: bytes) -> bool:
    """``line`` begins and ends as the template does (and holds its padding's key)."""
    return line.startswith(head) and line.endswith(tail) and (pad is None or pad in line)


def _fits(line: bytes, head: bytes, pad: bytes | None, tail: bytes) -> bool:
    """``line`` is the template with a non-empty JSON string for its text (and a
    string for its padding): ``_all_texts``/``_all_padded`` for one line."""
    if not (line.startswith(head) and line.endswith(tail)):
        return False
    end = len(line) - len(tail)
    try:
        if pad is not None:
            at = line.rfind(pad)
            if at < len(head) or at + len(pad) > end:
                return False
            _decode_str(line[at + len(pad) : end])
            end = at
        return bool(_decode_str(line[len(head) : end]))
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False


def _all_texts(run: list[bytes], head: bytes, tail: bytes) -> bool:
    """True when every line of ``run`` is ``head``, one non-empty JSON string and
    ``tail``, checked for the whole run in a few C calls: the middles cut from all the
    lines at once, put back between ``head`` and ``tail``, must give the run's bytes
    (so each line is exactly its middle between the two: a line too short to hold
    both would make the lengths differ), and each middle must read as a string: the
    middles, joined by ",LF" in a JSON array, must read as that many strings (a string
    cannot hold a raw LF, so each string lies within one middle; a middle with no string
    leaves an empty element, which does not read). False: some line is not so (look
    at them one by one)."""
    cut = len(tail)
    if not cut:
        return False
    middles = list(map(_cut, run, repeat(slice(len(head), -cut))))
    try:  # all at once: a string holds no raw LF, so none spans a ",LF" between middles
        texts = _decode_strs(b"[" + b",\n".join(middles) + b"]")
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False
    if len(texts) != len(run):  # a middle held two strings (and another none: invalid)
        return False
    # head and tail go on the first and last middles (small copies): the run is rebuilt
    # in one join, not three
    middles[0] = head + middles[0]
    middles[-1] += tail
    return (tail + head).join(middles) == b"".join(run) and all(texts)


def _all_padded(run: list[bytes], head: bytes, pad: bytes, tail: bytes) -> bool:
    """``_all_texts`` for a template with a padding slot: each line of ``run`` is
    ``head``, a non-empty JSON string, ``pad``, a JSON string and ``tail``. The middles
    (each line less ``head`` and ``tail``) are joined as the pairs of a JSON array,
    ``[[TEXT PAD PADDING],LF[...]]``, and each ``pad`` made a ``,LF``: the whole must read
    as one pair of strings per line. A string holds no raw LF, so each ``],LF[`` and
    each ``,LF`` is JSON's own, outside the strings: each middle holds exactly one pair,
    so (with ``pad`` found once per line) exactly one ``pad`` between two strings.
    The run rebuilt from the middles must give the lines, as in ``_all_texts``."""
    middles = list(map(_cut, run, repeat(slice(len(head), -len(tail)))))
    parts = b"],\n[".join(middles).split(pad)  # (pad ends with ":", begins with no "[")
    if len(parts) != len(run) + 1:
        return False
    try:
        pairs = _decode_pairs(b"[[" + b",\n".join(parts) + b"]]")
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False
    if len(pairs) != len(run):
        return False
    middles[0] = head + middles[0]
    middles[-1] += tail
    return (tail + head).join(middles) == b"".join(run) and all(map(_first, pairs))


def _typed(payload: bytes) -> tuple[ChatCompletionChunk, bytes]:
    """``payload`` decoded (invalid UTF-8 replaced first, as the event-stream rules say)."""
    try:
        return _decode_chunk(payload), payload
    except (msgspec.DecodeError, msgspec.ValidationError):
        fixed = payload.decode("utf-8", "replace").encode()
        try:
            return _decode_chunk(fixed), fixed
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise DecodeError(
                f"malformed stream chunk: {exc}; data starts {payload[:200]!r}"
            ) from exc


def _any_or_text(payload: str) -> Any:
    try:
        body = _decode_any(payload)
    except msgspec.DecodeError:
        return payload
    return body.get("error", body) if isinstance(body, dict) else body
