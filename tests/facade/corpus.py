"""The snippet corpus (``snippets.toml``) and how one snippet is run: the import
switched to the facade (or left as it is for the real SDK), scripted replies enqueued
on a fresh ``MockServer``, ``OPENAI_BASE_URL``/``OPENAI_API_KEY`` set, stdout captured."""

from __future__ import annotations

import contextlib
import gc
import io
import os
import re
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmfast.testing import MockServer, Reply

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]

CORPUS = Path(__file__).with_name("snippets.toml")

_FROM = re.compile(r"^(\s*)from openai import ", re.MULTILINE)
_IMPORT = re.compile(r"^(\s*)import openai\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Snippet:
    name: str
    code: str
    expect: tuple[str, ...] = ()
    replies: tuple[Mapping[str, Any], ...] = ()
    compare: bool = True
    unsupported: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def load() -> list[Snippet]:
    data = tomllib.loads(CORPUS.read_text())
    snippets = []
    for entry in data["snippet"]:
        entry = dict(entry)
        snippets.append(
            Snippet(
                name=entry.pop("name"),
                code=entry.pop("code"),
                expect=tuple(entry.pop("expect", ())),
                replies=tuple(entry.pop("replies", ())),
                compare=entry.pop("compare", True),
                unsupported=entry.pop("unsupported", None),
                extra=entry,
            )
        )
    return snippets


def for_facade(code: str) -> str:
    """The snippet with its import switched to ``llmfast.openai`` (and nothing else)."""
    code = _FROM.sub(r"\1from llmfast.openai import ", code)
    return _IMPORT.sub(r"\1import llmfast.openai as openai", code)


def reply(spec: Mapping[str, Any]) -> Reply:
    options = dict(spec)
    make = getattr(Reply, options.pop("kind"))
    reply: Reply = make(**options)
    return reply


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run(snippet: Snippet, code: str) -> str:
    """Run ``code`` against a fresh server with the snippet's replies; its stdout."""
    with MockServer.in_thread() as server:
        server.enqueue(*(reply(spec) for spec in snippet.replies))
        env = {"OPENAI_BASE_URL": server.url, "OPENAI_API_KEY": "sk-snippets"}
        out = io.StringIO()
        namespace: dict[str, Any] = {"__name__": "__main__"}
        try:
            with _environment(env), contextlib.redirect_stdout(out):
                exec(
                    compile(code, f"<snippet {snippet.name}>", "exec", dont_inherit=True), namespace
                )
        finally:
            namespace.clear()
    return out.getvalue()


@contextlib.contextmanager
def leaving_clients_to_the_collector() -> Iterator[None]:
    """SDK code, the README's included, leaves its clients to the garbage collector,
    which closes their connections. llmfast then warns with a ``ResourceWarning``
    (silent outside test suites): ignored here, and everything collected at the end
    (the facade's own resource handling is tested in test_facade.py)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            yield
        finally:
            for _ in range(3):  # finalizers free more garbage for the next pass
                gc.collect()
