"""A stream's chunks as OpenAI's server-sent events, a network read's worth at a time.

Nearly every chunk of a stream only adds text to choice 0; such a chunk is the
stream's byte template (its id, created, model and fingerprint, built once) with the
msgspec-encoded text spliced in: the same JSON as
[`chunk_json`][llmfast.gateway.openai_wire.chunk_json], without building and walking a
dict per chunk. Every other chunk goes through ``chunk_json``.

The fast path: a read that came as [`RawEvents`][llmfast.raw_events.RawEvents] (an
OpenAI-format upstream asked with ``raw_events``) goes out as the upstream's own
events (the network read's bytes themselves, when it held nothing else); only a
usage event the client did not ask for (``stream_options.include_usage``) is framed
from its typed chunk, or left out.
"""

from __future__ import annotations

import msgspec

from llmfast.gateway.openai_wire import chunk_json
from llmfast.raw_events import RawEvents, sse_of
from llmfast.types import ChatCompletionChunk, Usage

__all__ = ["ChunkFrames"]

_encode = msgspec.json.Encoder().encode
_TEXT_TAIL = b'},"logprobs":null,"finish_reason":null}]}\n\n'
_DONE = b"data: [DONE]\n\n"


class ChunkFrames:
    """One stream's ``data: {...}`` frames, then ``data: [DONE]``.

    Without ``include_usage`` (the client's ``stream_options``) usage is left out, and
    a chunk with only usage gives no frame; ``usage`` is the last usage the stream
    reported, for the gateway's metrics.
    """

    __slots__ = ("_head", "_include_usage", "_key", "usage")

    def __init__(self, *, include_usage: bool) -> None:
        self._include_usage = include_usage
        self._key: tuple[str, int, str, str | None] | None = None
        self._head = b""
        self.usage: Usage | None = None

    def batch(self, chunks: list[ChatCompletionChunk] | RawEvents) -> bytes:
        """The frames of ``chunks``, joined."""
        if type(chunks) is RawEvents:
            return self._raw(chunks)
        out: list[bytes] = []
        append = out.append
        encode = _encode
        for chunk in chunks:
            choices = chunk.choices
            if len(choices) == 1 and chunk.usage is None and chunk.error is None:
                choice = choices[0]
                delta = choice.delta
                text = delta.content
                if (
                    text is not None
                    and choice.index == 0
                    and choice.finish_reason is None
                    and choice.logprobs is None
                    and choice.provider_finish_reason is None
                    and delta.role is None
                    and delta.refusal is None
                    and delta.tool_calls is None
                    and delta.reasoning_content is None
                    and delta.reasoning_signature is None
                    and chunk.native is None
                ):
                    key = (chunk.id, chunk.created, chunk.model, chunk.system_fingerprint)
                    if key != self._key:
                        self._key = key
                        self._head = _text_head(*key)
                    append(self._head + encode(text) + _TEXT_TAIL)
                    continue
            append(self._frame(chunk))
        return b"".join(out)

    def finish_after(self, chunks: list[ChatCompletionChunk] | RawEvents) -> bytes:
        """``batch(chunks) + finish()``, the upstream's events in one join."""
        if type(chunks) is RawEvents:
            return self._raw(chunks, _DONE)
        return self.batch(chunks) + _DONE

    def _raw(self, events: RawEvents, done: bytes = b"") -> bytes:
        lines = events.lines
        if not lines:
            return done
        notable = events.notable
        if not notable:  # text deltas only (a live stream's usual read)
            return events.sse(done)
        usages = [i for i, chunk in notable.items() if chunk.usage is not None]
        if usages:
            self.usage = events.notable[usages[-1]].usage
        if not usages or self._include_usage:
            return events.sse(done)  # the upstream's bytes (the read itself, if it can)
        out: list[bytes] = []
        start = 0
        for i in usages:  # the runs between usage events as they are; those framed anew
            if i > start:
                out.append(sse_of(lines[start:i]))
            out.append(self._frame(events.notable[i]))  # without its usage, or nothing
            start = i + 1
        if start < len(lines):
            out.append(sse_of(lines[start:]))
        out.append(done)
        return b"".join(out)

    def _frame(self, chunk: ChatCompletionChunk) -> bytes:
        if chunk.usage is not None:
            self.usage = chunk.usage
            if not self._include_usage:
                if not chunk.choices:
                    return b""
                return b"data: " + chunk_json(chunk, with_usage=False) + b"\n\n"
        return b"data: " + chunk_json(chunk) + b"\n\n"

    def finish(self) -> bytes:
        """The end of the stream."""
        return _DONE


def _text_head(id: str, created: int, model: str, fingerprint: str | None) -> bytes:
    head = [b'data: {"id":', _encode(id), b',"object":"chat.completion.chunk","created":']
    head += [_encode(created), b',"model":', _encode(model)]
    if fingerprint is not None:
        head += [b',"system_fingerprint":', _encode(fingerprint)]
    head.append(b',"choices":[{"index":0,"delta":{"content":')
    return b"".join(head)
