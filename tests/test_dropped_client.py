"""A client dropped without ``aclose()`` (a re-run notebook cell) releases its connections
without aiohttp's "Unclosed client session" error log, yet a leak stays detectable:
it warns with a ``ResourceWarning``, an error in this suite."""

from __future__ import annotations

import gc

import pytest

from llmfast import Client
from llmfast.testing import MockServer


async def test_a_dropped_client_closes_its_connections_with_a_resource_warning() -> None:
    async with MockServer() as server:
        client = Client(base_url=server.url, model="m")
        assert (await client.chat("hi")).text == "hi"
        assert server.open_connections == 1
        with pytest.warns(ResourceWarning, match="without aclose"):  # noqa: PT031
            del client
            gc.collect()
        await server.wait_open_connections(0)


async def test_a_closed_client_is_not_warned_about_when_collected() -> None:
    async with MockServer() as server:
        client = Client(base_url=server.url, model="m")
        await client.chat("hi")
        await client.aclose()
        del client
        gc.collect()  # the suite's filters turn a ResourceWarning into an error
        await server.wait_open_connections(0)
