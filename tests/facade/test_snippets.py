"""The snippet corpus runs on the facade, and prints what the real SDK prints.

One test per side over the whole corpus (each run is a fresh server; every failing
snippet is listed): a test per snippet would cost a full garbage collection each.
"""

from __future__ import annotations

import importlib.util
import traceback
from collections.abc import Iterator

import pytest

from llmfast.layers.retry import set_testing
from tests.facade.corpus import Snippet, for_facade, leaving_clients_to_the_collector, load, run

SNIPPETS = load()
SUPPORTED = [s for s in SNIPPETS if s.unsupported is None]
_HAVE_SDK = importlib.util.find_spec("openai") is not None


@pytest.fixture(autouse=True)
def _instant_retries() -> Iterator[None]:
    set_testing(True)
    try:
        yield
    finally:
        set_testing(False)


def _attempt(snippet: Snippet, code: str) -> tuple[str | None, str | None]:
    """(stdout, None) or (None, the error's traceback)."""
    try:
        return run(snippet, code), None
    except Exception:
        return None, traceback.format_exc(limit=-3)


def test_the_corpus_is_large_and_named_once() -> None:
    names = [s.name for s in SNIPPETS]
    assert len(set(names)) == len(names)
    assert len(SUPPORTED) >= 30
    assert all(not s.extra for s in SNIPPETS), [s.extra for s in SNIPPETS if s.extra]
    assert all(s.expect for s in SUPPORTED)
    assert all("openai" in s.code for s in SNIPPETS)


def test_the_switch_changes_only_the_import() -> None:
    code = "import openai\nfrom openai import OpenAI\nx = openai.RateLimitError\n"
    assert for_facade(code) == (
        "import llmfast.openai as openai\nfrom llmfast.openai import OpenAI\n"
        "x = openai.RateLimitError\n"
    )


def test_every_snippet_runs_on_the_facade() -> None:
    failures: list[str] = []
    with leaving_clients_to_the_collector():
        for snippet in SUPPORTED:
            output, error = _attempt(snippet, for_facade(snippet.code))
            if output is None:
                failures.append(f"{snippet.name}: raised\n{error}")
                continue
            missing = [line for line in snippet.expect if line not in output]
            if missing:
                failures.append(f"{snippet.name}: {missing} not in output:\n{output}")
    assert not failures, "\n\n".join(failures)


def test_every_unsupported_snippet_really_fails() -> None:
    ran = []
    with leaving_clients_to_the_collector():
        for snippet in SNIPPETS:
            if snippet.unsupported is not None:
                output, _ = _attempt(snippet, for_facade(snippet.code))
                if output is not None:
                    ran.append(snippet.name)
    assert not ran, f"listed as unsupported but they run: {ran}"


@pytest.mark.skipif(not _HAVE_SDK, reason="the openai SDK is not installed")
def test_every_snippet_prints_what_the_sdk_prints() -> None:
    differ: list[str] = []
    compared = [s for s in SUPPORTED if s.compare]
    assert len(compared) >= 25
    with leaving_clients_to_the_collector():
        for snippet in compared:
            ours, our_error = _attempt(snippet, for_facade(snippet.code))
            theirs, their_error = _attempt(snippet, snippet.code)
            if theirs is None:
                differ.append(f"{snippet.name}: the SDK itself failed\n{their_error}")
            elif ours != theirs:
                differ.append(
                    f"{snippet.name}:\n--- facade\n{ours or our_error}\n--- openai\n{theirs}"
                )
    assert not differ, "\n\n".join(differ)
