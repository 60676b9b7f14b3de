"""Shared by the framework integration suites (LangChain, pydantic-ai)."""

from __future__ import annotations

import gc

import pytest


def pytest_collection_finish(session: pytest.Session) -> None:
    # The frameworks these suites import (langchain-core, langsmith, pydantic-ai...) about
    # double the objects that tests/conftest.py's gc.collect() after every test walks
    # (measured: 60k -> 140k objects, 3x the time per collection), which would slow
    # every test in the run. Modules and classes live as long as the process: move
    # everything imported during collection to the permanent generation, which
    # collections skip. Objects the tests make are still collected (and leaks caught).
    gc.freeze()
