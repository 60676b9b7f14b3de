"""OpenAI chat SSE read in raw mode: the events' payloads kept as bytes (see
``llmfast.raw_events``).

Nearly every event of a stream is a text delta (or a reasoning text's, or, in a tool
call, a fragment of its arguments) whose bytes differ from the stream's other such
deltas only in that string: the same id, created, model, fingerprint, and the same
fields around it. The
stream's first event, the role with empty text (``"delta":{"role":"assistant",
"content":""}``, with or without ``"refusal":null``), foretells its text deltas: its
bytes with that delta made ``{"content":`` and ``}`` become the stream's template.
When the role event is shaped otherwise, or the deltas turn out not to fit (another
field, another byte, a tool call), the first plain delta decoded in full gives the
template instead: a wrong guess costs one read checked a payload at a time.
OpenAI pads each event with a random top-level ``"obfuscation"`` string (hiding the
text's length; a field llmfast does not read), last in OpenAI's events and amid the
fields in Azure's: a template with it has a second slot there, which may hold any
string. (Which event gives a template, and its slots: ``_openai_templates``.)

Every later payload that is the template with one non-empty JSON string in its slot
(and one in its padding slot) is that same JSON with another string: it stays bytes,
with no decode. A read's run of such payloads is checked in a few C calls for the
whole run, not a Python step per payload (the slots cut out at once, the run rebuilt
from them and compared, msgspec reading each slot); a run that fails is looked at
one payload at a time. Any other payload (the role, a finish, usage, an error event,
a tool call's start, a payload that differs in any other byte) is decoded in full at
once, so what is checked and tracked (an in-stream error, which choices were opened
and finished, malformed JSON) is exactly the typed path's.
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
_cut = cast(Callable[[bytes, slice], bytes], getitem)  # b[s] (the slot wrapper is slower)


class RawChatStreamParser(ChunkParser):
    """``feed`` returns a [`RawEvents`][llmfast.raw_events.RawEvents] per read."""

    __slots__ = ("_feed", "_head", "_pad", "_tail")

    end_marker = "[DONE]"

    def __init__(self, max_event_bytes: int | None = None) -> None:
        super().__init__()
        self._feed = SSEDecoder(max_event_bytes).feed_payloads
        self._head: bytes | None = None  # the stream's template, once an event gave it:
        self._pad: bytes | None = None  # head TEXT [pad PADDING] tail
        self._tail = b""

    def feed(self, data: bytes) -> RawEvents:  # type: ignore[override]
        if self.failure is not None:
            raise self.failure
        events = RawEvents()
        try:
            self._parse(self._feed(data), events)
        except Exception as exc:
            error = as_decode_error(exc, "stream data")
            if not events.payloads:
                if error is exc:
                    raise
                raise error from exc
            self.failure = error  # raised once the events before it are passed on
        return events

    def _parse(self, items: list[bytes | SSEEvent], events: RawEvents) -> None:
        payloads: list[bytes]
        failure: Exception | None = None
        if all(map(isinstance, items, repeat(bytes))):  # plain events only (the usual case)
            try:
                end = items.index(b"[DONE]")
            except ValueError:
                payloads = items  # type: ignore[assignment]
            else:
                self.done = True
                payloads = items[:end]  # type: ignore[assignment]
        else:
            payloads = []
            for item in items:
                if type(item) is bytes:
                    if item == b"[DONE]":
                        self.done = True
                        break
                    payloads.append(item)
                    continue
                assert isinstance(item, SSEEvent)
                if item.data == "[DONE]":
                    self.done = True
                    break
                if item.event == "message":
                    payloads.append(item.data.encode())
                elif item.event == "error":
                    failure = StreamEventError(_any_or_text(item.data))
                    break
                # pings and other named events are not chunks
        if payloads:
            self._check(payloads, events)
        if failure is not None:
            raise failure
        events.end = self.done

    def _check(self, payloads: list[bytes], events: RawEvents) -> None:
        """Classify ``payloads`` into ``events``; raise at the first bad one (after
        keeping those before it)."""
        start = 0
        if self._head is None:  # no template yet: decode until one gives it
            for payload in payloads:
                start += 1
                self._decoded(payload, events)
                if self._head is not None:
                    break
        if start < len(payloads):
            self._against_template(payloads[start:] if start else payloads, events)

    def _against_template(self, payloads: list[bytes], events: RawEvents) -> None:
        """Keep the payloads that are the template's text deltas as they are; decode
        the others, in order. The payloads up to the last one shaped like the template
        (a stream's finish and usage come after its texts) are checked in bulk
        (``_all_texts``, or ``_all_padded``), and one by one only when that fails."""
        head, pad, tail = self._head or b"", self._pad, self._tail
        end = len(payloads)
        while end and not _shaped(payloads[end - 1], head, pad, tail):
            end -= 1
        if end:
            run = payloads[:end] if end < len(payloads) else payloads
            if _all_texts(run, head, tail) if pad is None else _all_padded(run, head, pad, tail):
                events.payloads += run
            else:  # one of them is not: find it, and decode what needs it
                self._one_by_one(run, events)
        if end < len(payloads):
            self._one_by_one(payloads[end:], events)

    def _one_by_one(self, payloads: list[bytes], events: RawEvents) -> None:
        """``_against_template``, a payload at a time."""
        append = events.payloads.append
        head = self._head
        for payload in payloads:
            if head is not None and _fits(payload, head, self._pad, self._tail):
                append(payload)
                continue
            self._decoded(payload, events)
            head = self._head  # (another template, from here on, if it gave one)

    def _decoded(self, payload: bytes, events: RawEvents) -> None:
        """Decode ``payload`` in full and keep it: notable, or the stream's template."""
        chunk, payload = _typed(payload)
        if chunk.error is not None:
            raise StreamEventError(chunk.error)
        ChunkParser._note(self, [chunk])
        template = delta_template(payload, chunk)
        if template is None:
            events.notable[len(events.payloads)] = chunk
            if self._head is None:
                template = role_template(payload, chunk)
        if template is not None:
            self._head, self._pad, self._tail = padded(payload, *template)
        events.payloads.append(payload)

    def finish(self, out: list[ChatCompletionChunk]) -> None:
        if not self.done:
            raise StreamTruncatedError("the event stream ended before [DONE]")


def _shaped(payload: bytes, head: bytes, pad: bytes | None, tail: bytes) -> bool:
    """``payload`` begins and ends as the template does (and holds its padding's key)."""
    return payload.startswith(head) and payload.endswith(tail) and (pad is None or pad in payload)


def _fits(payload: bytes, head: bytes, pad: bytes | None, tail: bytes) -> bool:
    """``payload`` is the template with a non-empty JSON string for its text (and a
    string for its padding): ``_all_texts``/``_all_padded`` for one payload."""
    if not (payload.startswith(head) and payload.endswith(tail)):
        return False
    end = len(payload) - len(tail)
    try:
        if pad is not None:
            at = payload.rfind(pad)
            if at < len(head) or at + len(pad) > end:
                return False
            _decode_str(payload[at + len(pad) : end])
            end = at
        return bool(_decode_str(payload[len(head) : end]))
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False


def _all_texts(run: list[bytes], head: bytes, tail: bytes) -> bool:
    """True when every payload of ``run`` is ``head``, one non-empty JSON string and
    ``tail``, checked for the whole run in a few C calls: the middles cut from all the
    payloads at once, put back between ``head`` and ``tail``, must give the run's bytes
    (so each payload is exactly its middle between the two: a payload too short to hold
    both would make the lengths differ), and each middle must read as a string: the
    middles, joined by ",LF" in a JSON array, must read as that many strings (a string
    cannot hold a raw LF, so each string lies within one middle; a middle with no string
    leaves an empty element, which does not read). False: some payload is not so (look
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
    """``_all_texts`` for a template with a padding slot: each payload of ``run`` is
    ``head``, a non-empty JSON string, ``pad``, a JSON string and ``tail``. The middles
    (each payload less ``head`` and ``tail``) are joined as the pairs of a JSON array,
    ``[[TEXT PAD PADDING],LF[...]]``, and each ``pad`` made a ``,LF``: the whole must read
    as one pair of strings per payload. A string holds no raw LF, so each ``],LF[`` and
    each ``,LF`` is JSON's own, outside the strings: each middle holds exactly one pair,
    so (with ``pad`` found once per payload) exactly one ``pad`` between two strings.
    The run rebuilt from the middles must give the payloads, as in ``_all_texts``."""
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
