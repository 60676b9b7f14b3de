"""The pytest examples of docs/testing.md run as copied, through llmfast's pytest plugin
(the ``pytest11`` entry point): under plain pytest, and under pytest-asyncio's default
strict mode."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parent.parent / "docs" / "testing.md"


def doc_test_files() -> dict[str, str]:
    """The doc's code blocks that start with a ``# test_....py`` file name."""
    blocks = re.findall(r"```python\n(# (test_\w+\.py)\n.*?)```", DOC.read_text(), re.S)
    return {name: code for code, name in blocks}


def test_the_doc_has_a_sync_and_an_async_example() -> None:
    assert sorted(doc_test_files()) == ["test_my_app.py", "test_my_async_app.py"]


def test_the_sync_example_runs_under_plain_pytest(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(**{"test_my_app": doc_test_files()["test_my_app.py"]})
    result = pytester.runpytest_subprocess("-p", "no:asyncio", "-W", "error")
    result.assert_outcomes(passed=1)


def test_both_examples_run_under_pytest_asyncio_strict_mode(pytester: pytest.Pytester) -> None:
    files = {name.removesuffix(".py"): code for name, code in doc_test_files().items()}
    pytester.makepyfile(**files)
    strict = ("-o", "asyncio_mode=strict", "-o", "asyncio_default_fixture_loop_scope=function")
    result = pytester.runpytest_subprocess("-p", "asyncio", *strict, "-W", "error")
    result.assert_outcomes(passed=2)


def test_the_fixture_leaves_no_server_thread_behind(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_threads="""
        import threading

        def names():
            return [t.name for t in threading.enumerate()]

        def test_uses_it(llm_server):
            assert "llmfast-mock-server" in names()

        def test_after(llm_server):
            pass

        def test_then_none_left():
            assert "llmfast-mock-server" not in names()
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:asyncio", "-p", "no:randomly")
    result.assert_outcomes(passed=3)
