"""Request keys: one stable hash for every request that means the same thing.

The cache and the coalescing layer both key a request by
[`request_key`][llmfast.layers.request_key]: a BLAKE2b hash of a canonical msgspec encoding of

- a format version (`KEY_VERSION`),
- the backend's identity: its ``kind`` and its base URL (user info and credential-like
  query parameters removed), see [`backend_identity`][llmfast.layers.backend_identity],
- the kind of call (chat or embed) and whether it streams (a stream and a plain call
  never share a key: one is replayed as chunks, the other returns a completion),
- the whole body, normalized: typed and plain-dict messages and tools take one
  canonical form, driven by the typed structs' schema (a field at its declared
  default, ``None`` included, is dropped whether given or not; a dict with a key the
  struct does not know is kept whole, so nothing it says is ever ignored); integer
  values of float parameters become floats; an empty ``extra_body`` counts as none;
  every map is encoded with its keys sorted. ``extra_body`` (provider-specific
  parameters) is part of the key, the model too.

Never part of the key: the API key and every header, timeouts, the deadline, the
event hook and ``request.context``; nor what only steers the provider's prompt cache
(``cache=`` marks, ``cache_control`` keys of messages, parts and tools, and
``prompt_cache_key``): they change the cost of an answer, never the answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
import msgspec.inspect as mi

from llmfast.transport import Request
from llmfast.types import ChatRequest, EmbeddingRequest, Message, Tool

__all__ = [
    "KEY_VERSION",
    "backend_identity",
    "canonical_request",
    "is_deterministic",
    "request_key",
]

KEY_VERSION = 1
"""Bumped whenever the canonical form or the cache entry format changes."""

_encode = msgspec.json.Encoder(order="sorted").encode
_to_builtins = msgspec.to_builtins
_replace = msgspec.structs.replace
_blake2b = hashlib.blake2b
_SECRET_QUERY = frozenset(
    {"key", "api_key", "api-key", "apikey", "access_token", "token", "sig", "signature"}
)

_NOT_KEYED = frozenset({"cache_control"})
"""Struct fields left out of the canonical form (prompt-cache breakpoints)."""

_Normalize = Callable[[Any], Any]
_NO_DEFAULT: Any = object()


class _Lossy(Exception):
    """The value has a key its struct type does not know: keep it as it is."""


def _same(value: Any) -> Any:
    return value


def _compile(t: mi.Type) -> _Normalize:
    """A function giving a builtin value of type ``t`` its canonical form: fields at
    their declared default dropped. Raises ``_Lossy`` on a key the type lacks."""
    if isinstance(t, mi.StructType):
        return _compile_struct(t)
    if isinstance(t, (mi.ListType, mi.VarTupleType)):
        item = _compile(t.item_type)
        return lambda value: [item(x) for x in value] if isinstance(value, list) else value
    if isinstance(t, mi.UnionType):
        return _compile_union(t)
    return _same


def _default(field: mi.Field) -> Any:
    if field.default is not msgspec.NODEFAULT:
        return field.default
    if field.default_factory is not msgspec.NODEFAULT:
        return field.default_factory()
    return _NO_DEFAULT


def _compile_struct(t: mi.StructType) -> _Normalize:
    fields = {
        field.encode_name: (_compile(field.type), _default(field))
        for field in t.fields
        if field.encode_name not in _NOT_KEYED
    }
    tag_field = t.tag_field

    def normalize(value: Any) -> Any:
        if not isinstance(value, dict):
            raise _Lossy
        out = {}
        for name, item in value.items():
            field = fields.get(name)
            if field is None:
                if name in _NOT_KEYED:
                    continue
                if name != tag_field:
                    raise _Lossy
                out[name] = item
                continue
            item = field[0](item)
            default = field[1]
            if item is default or (type(item) is type(default) and item == default):
                continue
            out[name] = item
        return out

    return normalize


def _compile_union(t: mi.UnionType) -> _Normalize:
    tagged: dict[Any, _Normalize] = {}
    tag_field: str | None = None
    plain: _Normalize = _same
    sequence: _Normalize = _same
    for member in t.types:
        if isinstance(member, mi.StructType):
            if member.tag_field is not None:
                tag_field = member.tag_field
                tagged[member.tag] = _compile_struct(member)
            else:
                plain = _compile_struct(member)
        elif isinstance(member, (mi.ListType, mi.VarTupleType)):
            sequence = _compile(member)

    def normalize(value: Any) -> Any:
        if isinstance(value, dict):
            if tagged:
                struct = tagged.get(value.get(tag_field))
                if struct is None:
                    raise _Lossy
                return struct(value)
            return plain(value)
        if isinstance(value, list):
            return sequence(value)
        return value

    return normalize


_normal_message = _compile(mi.type_info(Message))
_normal_tool = _compile(mi.type_info(Tool))


def _normal(item: Any, normalize: _Normalize) -> Any:
    """``item`` (a struct or a dict) in canonical form, or as given when it holds a key
    its type does not know (then nothing it says may be dropped)."""
    data = _to_builtins(item if not isinstance(item, Mapping) or type(item) is dict else dict(item))
    try:
        return normalize(data)
    except _Lossy:
        return data


def _float(value: float | None) -> float | None:
    return float(value) if type(value) is int else value


def _canonical_chat(body: ChatRequest) -> ChatRequest:
    tools = body.tools
    if tools is not None:
        tools = [_normal(tool, _normal_tool) for tool in tools]
    return _replace(
        body,
        messages=[_normal(m, _normal_message) for m in body.messages],
        tools=tools,
        temperature=_float(body.temperature),
        top_p=_float(body.top_p),
        presence_penalty=_float(body.presence_penalty),
        frequency_penalty=_float(body.frequency_penalty),
        extra_body=body.extra_body or None,
        prompt_cache_key=None,
    )


def canonical_request(request: Request, identity: str = "") -> bytes:
    """The canonical encoding [`request_key`][llmfast.layers.request_key] hashes (useful for
    debugging keys).

    Raises ``TypeError`` or ``msgspec.EncodeError`` for a body msgspec cannot encode.
    """
    body = request.body
    if type(body) is ChatRequest:
        return _encode((KEY_VERSION, identity, "chat", request.stream, _canonical_chat(body)))
    assert isinstance(body, EmbeddingRequest)
    canonical = _replace(body, extra_body=body.extra_body or None)
    return _encode((KEY_VERSION, identity, "embed", False, canonical))


def request_key(request: Request, identity: str = "") -> str:
    """The request's key: 40 hex digits, equal for requests that mean the same thing.

    ``identity`` names the backend (see [`backend_identity`][llmfast.layers.backend_identity]).
    """
    return _blake2b(canonical_request(request, identity), digest_size=20).hexdigest()


def _public_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2].lower()
    query = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if name.lower() not in _SECRET_QUERY
    ]
    return urlunsplit((parts.scheme.lower(), host, parts.path.rstrip("/"), urlencode(query), ""))


def backend_identity(transport: object) -> str:
    """What names the backend at the core of ``transport`` in every key.

    Follows ``.inner`` from a layer down to the core. A core with a
    ``cache_identity()`` method names itself; one with a ``base_url`` is
    ``"<kind> <base URL>"``, the URL without user info or credential-like query
    parameters (``key``, ``api_key``, ``token``...); any other is its ``kind`` and
    ``repr()`` (which never shows a key), as it is when the layer is built.
    """
    core = transport
    for _ in range(1000):
        inner = getattr(core, "inner", None)
        if inner is None:
            break
        core = inner
    named = getattr(core, "cache_identity", None)
    if callable(named):
        return str(named())
    kind = getattr(core, "kind", None) or type(core).__qualname__
    base_url = getattr(core, "base_url", None)
    if isinstance(base_url, str):
        return f"{kind} {_public_url(base_url)}"
    return f"{kind} {core!r}"


def is_deterministic(request: Request) -> bool:
    """True for embeddings, and for chats at temperature 0 or with a seed.

    The default policy of the cache and of coalescing: other chats are samples, and
    callers who send the same one several times usually want different answers.
    """
    body = request.body
    if type(body) is not ChatRequest:
        return True
    temperature: Any = body.temperature
    seed: Any = body.seed
    extra = body.extra_body
    if extra:
        if temperature is None:
            temperature = extra.get("temperature")
        if seed is None:
            seed = extra.get("seed")
    return seed is not None or temperature == 0
