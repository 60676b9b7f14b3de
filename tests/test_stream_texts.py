"""``ChatStream.text_deltas()`` reads the stream itself (one async step per text, not
two): the chunks are kept, a failure carries the partial, leaving early releases the
connection, and the stream is read once, through it or through ``async for``."""

from __future__ import annotations

from typing import Any

import pytest

import llmfast
from llmfast import Client, StreamConsumedError
from llmfast.testing import MockServer, Reply


async def test_texts_keep_the_chunks_for_the_completion() -> None:
    async with MockServer() as server, Client(base_url=server.url, model="m") as client:
        server.enqueue(Reply.text("one two three"))
        async with client.stream("x") as stream:
            texts = [text async for text in stream.text_deltas()]
        assert texts == ["one ", "two ", "three"]
        assert stream.completion.text == "one two three"
        assert "".join(chunk.text for chunk in stream.chunks) == "one two three"


async def test_the_stream_is_read_once_through_either() -> None:
    async with MockServer() as server, Client(base_url=server.url, model="m") as client:
        async with client.stream("a b") as stream:
            _ = [text async for text in stream.text_deltas()]
            with pytest.raises(StreamConsumedError):
                stream.text_deltas()
            with pytest.raises(StreamConsumedError):
                aiter(stream)
        async with client.stream("a b") as stream:
            _ = [chunk async for chunk in stream]
            with pytest.raises(StreamConsumedError):
                stream.text_deltas()


async def test_a_failure_after_texts_carries_the_partial() -> None:
    async with MockServer() as server, Client(base_url=server.url, model="m") as client:
        server.enqueue(Reply.reset(after_chunks=3))
        texts: list[str] = []
        with pytest.raises(llmfast.StreamInterruptedError) as caught:
            async with client.stream("x y z w") as stream:
                async for text in stream.text_deltas():
                    texts.append(text)  # noqa: PERF401 - kept up to the failure
        assert texts == ["x ", "y "]  # the first chunk has the role, no text
        assert caught.value.partial_text == "x y "


async def test_leaving_the_texts_early_releases_the_connection() -> None:
    async with MockServer() as server, Client(base_url=server.url, model="m") as client:
        async with client.stream("a b c d e f") as stream:
            async for _ in stream.text_deltas():
                break
        assert client._pool.connections_in_use() == 0


async def test_texts_with_a_hook_report_the_call() -> None:
    events: list[Any] = []
    async with (
        MockServer() as server,
        Client(base_url=server.url, model="m", on_event=events.append) as client,
        client.stream("a b") as stream,
    ):
        texts = [text async for text in stream.text_deltas()]
    assert texts == ["a ", "b"]
    assert [e.name for e in events].count("done") == 1
