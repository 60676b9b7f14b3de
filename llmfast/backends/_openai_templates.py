"""The byte templates of an OpenAI chat stream's deltas, for ``_openai_raw``: which
decoded event gives one, and where its slots lie.

A template is ``(head, pad, tail)``: an event that is ``head``, one JSON string,
``tail`` (or, with a padding slot, ``head``, a string, ``pad``, any string, ``tail``)
is the template's event with other strings in its slots.
"""

from __future__ import annotations

import msgspec

from llmfast.types import ChatCompletionChunk, ChunkChoice

__all__ = ["delta_template", "padded", "role_template"]

_encode = msgspec.json.Encoder().encode
_decode_str = msgspec.json.Decoder(str).decode
_CONTENT = b'"content":'
_ARGUMENTS = b'"arguments":'
_REASONING = b'"reasoning_content":'
_PAD_KEY = b'"obfuscation":'
_ROLE_ENDS = (b',"content":""}', b',"content":"","refusal":null}')


class _Padding(msgspec.Struct):
    """The top-level field OpenAI pads its events with."""

    obfuscation: str | None = None


_decode_padding = msgspec.json.Decoder(_Padding).decode


def _plain_choice(chunk: ChatCompletionChunk) -> ChunkChoice | None:
    """The chunk's only choice, if it is choice 0 and neither it nor the chunk carries
    anything but its delta (no usage, finish, logprobs, refusal or signature)."""
    if len(chunk.choices) != 1 or chunk.usage is not None or chunk.native is not None:
        return None
    choice = chunk.choices[0]
    delta = choice.delta
    if (
        choice.index != 0
        or choice.finish_reason is not None
        or choice.logprobs is not None
        or choice.provider_finish_reason is not None
        or delta.refusal is not None
        or delta.reasoning_signature is not None
    ):
        return None
    return choice


def delta_template(payload: bytes, chunk: ChatCompletionChunk) -> tuple[bytes, bytes] | None:
    """The bytes before and after the slot of ``payload`` if it is a plain delta of
    choice 0 (a text, a reasoning text or one tool call's arguments fragment) whose
    string appears in it once, as msgspec encodes it; else None."""
    choice = _plain_choice(chunk)
    if choice is None or choice.delta.role is not None:
        return None
    delta = choice.delta
    name, text = _CONTENT, delta.content
    if delta.reasoning_content is not None:  # (beside no text, or an empty one)
        if text or delta.tool_calls is not None:
            return None
        name, text = _REASONING, delta.reasoning_content
    elif delta.tool_calls is not None:
        if text or len(delta.tool_calls) != 1:
            return None
        call = delta.tool_calls[0]
        function = call.function
        if (
            function is None
            or function.name is not None
            or call.id is not None
            or call.type is not None
        ):
            return None
        name, text = _ARGUMENTS, function.arguments
    if not text:
        return None
    key = name + _encode(text)
    at = payload.find(key)
    if at < 0 or payload.find(key, at + 1) >= 0:
        return None
    start = at + len(name)
    return payload[:start], payload[at + len(key) :]


def role_template(payload: bytes, chunk: ChatCompletionChunk) -> tuple[bytes, bytes] | None:
    """The template a role event with empty text foretells: its bytes with the delta
    ``{"content":TEXT}`` instead of ``{"role":ROLE,"content":""}``; else None."""
    choice = _plain_choice(chunk)
    if choice is None:
        return None
    delta = choice.delta
    if (
        delta.role is None
        or delta.content != ""
        or delta.tool_calls is not None
        or delta.reasoning_content is not None
    ):
        return None
    for end in _ROLE_ENDS:
        key = b'"delta":{"role":' + _encode(delta.role) + end
        at = payload.find(key)
        if at >= 0:
            if payload.find(key, at + 1) >= 0:
                return None
            return payload[:at] + b'"delta":{"content":', b"}" + payload[at + len(key) :]
    return None


def padded(payload: bytes, head: bytes, tail: bytes) -> tuple[bytes, bytes | None, bytes]:
    """``(head, pad, tail)``: the template's padding slot cut out of ``tail`` (``pad`` up
    to the slot, ``tail`` after it) when ``payload``'s only ``"obfuscation":`` is its
    top-level field's, with a string, after the text, and ``tail`` holds no LF (which
    the padded bulk check counts on); else ``(head, None, tail)``."""
    at = tail.find(_PAD_KEY)
    if at < 0 or tail.find(_PAD_KEY, at + 1) >= 0 or _PAD_KEY in head or b"\n" in tail:
        return head, None, tail
    try:
        value = _decode_padding(payload).obfuscation
    except msgspec.ValidationError:  # not a string
        return head, None, tail
    start = at + len(_PAD_KEY)
    end = _string_end(tail, start)
    if value is None or end < 0 or _decode_str(tail[start:end]) != value:  # nested
        return head, None, tail
    return head, tail[:start], tail[end:]


def _string_end(data: bytes, start: int) -> int:
    """Where the JSON string at ``data[start]`` ends (after its closing quote); -1 if
    none starts there."""
    if data[start : start + 1] != b'"':
        return -1
    quote = start
    while True:
        quote = data.find(b'"', quote + 1)
        if quote < 0:
            return -1
        escapes = len(data[start + 1 : quote]) - len(data[start + 1 : quote].rstrip(b"\\"))
        if escapes % 2 == 0:
            return quote + 1
