"""``MockServer.watch_stream()``: a watched stream's bytes are the unwatched ones, its
writer's pauses are reported while the client does not read, ``hold`` keeps it at its
headers, and a client hanging up is seen."""

from __future__ import annotations

import re

import aiohttp

from llmfast.testing import MockServer, Reply

_BODY = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}


async def _post(session: aiohttp.ClientSession, server: MockServer) -> aiohttp.ClientResponse:
    return await session.post(server.url + "/chat/completions", json=_BODY)


def _normal(body: bytes) -> bytes:
    """``body`` without what differs between two answers (the id and the time)."""
    return re.sub(rb'"created":\d+', b"", re.sub(rb"chatcmpl-mock\d+", b"", body))


async def test_a_watched_stream_is_the_same_stream(server: MockServer) -> None:
    async with aiohttp.ClientSession() as session:
        server.enqueue(Reply.text("the same words, twice over", chunk_size=3))
        async with await _post(session, server) as response:
            plain = await response.read()
        flow = server.watch_stream(piece_size=7)
        server.enqueue(Reply.text("the same words, twice over", chunk_size=3))
        async with await _post(session, server) as response:
            watched = await response.read()
    assert _normal(watched) == _normal(plain)
    assert flow.done
    assert flow.written == flow.total == len(watched)
    assert not flow.disconnected


async def test_the_writer_pauses_while_the_client_does_not_read(server: MockServer) -> None:
    text = "~" * 2**20
    flow = server.watch_stream(send_buffer=32 * 1024)
    server.enqueue(Reply.text(text, chunk_size=65536))
    async with aiohttp.ClientSession() as session, await _post(session, server) as response:
        assert await flow.wait_paused()  # True: paused, not finished
        assert flow.paused
        assert 0 < flow.sent <= flow.written < flow.total
        body = await response.read()
    assert flow.done
    assert flow.pauses >= 1
    assert body.count(b"~") == len(text)


async def test_a_held_stream_waits_for_release(server: MockServer) -> None:
    flow = server.watch_stream(hold=True)
    server.enqueue(Reply.text("held back"))
    async with aiohttp.ClientSession() as session, await _post(session, server) as response:
        await flow.wait_started()
        assert response.status == 200  # the headers are out ...
        assert flow.written == 0  # ... the body is not
        flow.release()
        body = await response.read()
    assert b"held" in body
    assert b"[DONE]" in body
    assert flow.done


async def test_a_client_hanging_up_is_seen(server: MockServer) -> None:
    flow = server.watch_stream(hold=True)
    server.enqueue(Reply.text("never sent"))
    async with aiohttp.ClientSession() as session:
        response = await _post(session, server)
        await flow.wait_started()
        response.close()
        await flow.wait_disconnected()
    assert not flow.done
    assert flow.written == 0
