"""llmfast's pytest plugin, loaded automatically once llmfast is installed (the
``pytest11`` entry point): the ``llm_server`` fixture.

``llm_server`` is a [MockServer][llmfast.testing.MockServer] running on a thread of its
own (``MockServer.in_thread()``), so it serves a plain ``def test_...`` that uses
``SyncClient`` as well as an ``async def`` test that uses ``Client`` on any loop (with
pytest-asyncio), under any ``asyncio_mode``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from llmfast.testing import MockServer

__all__ = ["llm_server"]


@pytest.fixture
def llm_server() -> Iterator[MockServer]:
    """A fresh `MockServer` per test, on its own thread; closed after the test."""
    from llmfast.testing import MockServer  # loaded only by tests that use it

    with MockServer.in_thread() as server:
        yield server
