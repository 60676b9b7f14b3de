"""``SyncClient``: blocking calls from scripts, threads and running event loops.

The test server runs on its own thread and loop (``ThreadedServer``): a blocking call
made from the test's own running loop must not be served by that same loop.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from llmfast import (
    ClientClosedError,
    ConfigurationError,
    LLMFastError,
    StreamConsumedError,
    StreamInterruptedError,
)
from llmfast.batch.provider import BATCH_TIER, BatchLimits, ProviderBatch, ProviderBatchOptions
from llmfast.sync import SyncClient
from llmfast.testing import MockServer, Reply

T = TypeVar("T")


class ThreadedServer:
    """A ``MockServer`` on a loop of its own, in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = MockServer()
        self.call(self.server.start())
        self.url = self.server.url

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def enqueue(self, *replies: Reply) -> None:
        self.loop.call_soon_threadsafe(self.server.enqueue, *replies)

    def wait_for_requests(self, n: int) -> None:
        self.call(self.server.wait_for_requests(n))

    def wait_open_connections(self, n: int) -> None:
        """Wait (up to 15 s: the machine may be loaded) until the server holds exactly
        ``n`` open connections."""
        self.call(self.server.wait_open_connections(n, timeout=15.0))

    def close(self) -> None:
        self.call(self.server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


@pytest.fixture
def server() -> Iterator[ThreadedServer]:
    server = ThreadedServer()
    yield server
    server.close()


@pytest.fixture
def client(server: ThreadedServer) -> Iterator[SyncClient]:
    with SyncClient(base_url=server.url, model="mock-model") as client:
        yield client


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "llmfast-sync-loop"]


# --- calls -----------------------------------------------------------------------------


def test_chat_embed_and_warmup_from_a_plain_script(
    server: ThreadedServer, client: SyncClient
) -> None:
    reply = client.chat("hello there", max_tokens=5, temperature=0.0)
    assert reply.text == "hello there"
    (recorded,) = server.server.requests
    assert recorded.json == {
        "model": "mock-model",
        "messages": [{"role": "user", "content": "hello there"}],
        "temperature": 0.0,
        "max_tokens": 5,
    }
    vectors = client.embed(["a", "b"], model="mock-embed", dimensions=4).vectors
    assert [len(v) for v in vectors] == [4, 4]
    assert client.warmup(3) == 3
    assert client.model == "mock-model"


def test_a_stream_in_a_with_block_yields_text_and_the_completion(client: SyncClient) -> None:
    with client.stream("one two three") as stream:
        texts = list(stream.text_deltas())
        assert stream.response.status == 200
    assert texts == ["one ", "two ", "three"]
    assert stream.completion.text == "one two three"
    assert stream.completion.usage is not None
    assert [chunk.text for chunk in stream.chunks if chunk.text] == texts
    with pytest.raises(StreamConsumedError):
        list(stream)


def test_a_stream_is_a_plain_iterator_too(client: SyncClient) -> None:
    stream = client.stream("a b c")
    assert "".join(chunk.text for chunk in stream) == "a b c"
    assert stream.completion.finish_reason == "stop"
    assert client.stream("x y").collect().text == "x y"


@pytest.mark.parametrize("how", ["break", "raise", "with-break"])
def test_an_abandoned_stream_closes_its_connection(
    server: ThreadedServer, client: SyncClient, how: str
) -> None:
    server.enqueue(Reply.text("w " * 200, token_delay=0.002))
    stream = client.stream("long")
    if how == "with-break":
        with stream:
            for _ in stream:
                break
    elif how == "break":
        for _ in stream:
            break  # the iterator is dropped here, which closes the stream
    else:
        with pytest.raises(ZeroDivisionError):
            for _ in stream:
                1 / 0  # noqa: B018
    assert stream.response.closed
    assert client.client._pool.connections_in_use() == 0
    assert len(stream.chunks) < 200
    assert client.chat("next").text == "next"


def test_a_stream_failure_reaches_the_caller(server: ThreadedServer, client: SyncClient) -> None:
    server.enqueue(Reply.stream_error({"message": "boom"}, after_chunks=3))
    received: list[str] = []
    with pytest.raises(StreamInterruptedError, match="boom") as caught:
        received.extend(client.stream("one two three four").text_deltas())
    assert caught.value.partial_text == "".join(received)
    assert client.client._pool.connections_in_use() == 0


def test_map_runs_a_batch_in_order_with_a_checkpoint(
    server: ThreadedServer, client: SyncClient, tmp_path: Path
) -> None:
    prompts = [f"p{i}" for i in range(40)]
    checkpoint = tmp_path / "run.jsonl"
    results = list(client.map(prompts, concurrency=8, checkpoint=checkpoint))
    assert [r.text for r in results] == prompts
    again = client.map(prompts, checkpoint=checkpoint)
    assert all(r.resumed for r in again)
    assert again.batch.resumed == 40
    assert server.server.request_count == 40


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_map_via_the_provider_batch_api(
    server: ThreadedServer, provider: str, tmp_path: Path
) -> None:
    options = ProviderBatchOptions(limits=BatchLimits(3, 1 << 20), poll_interval=0.001)
    prompts = [f"p{i}" for i in range(7)]
    checkpoint = tmp_path / "run.jsonl"
    url = server.server.url_for(provider)
    with SyncClient(
        provider=provider, base_url=url, api_key="sk-x", model="m", stats=True
    ) as client:
        results = list(
            client.map(prompts, via="batch", checkpoint=checkpoint, batch_options=options)
        )
        with client.map(prompts, via="batch", checkpoint=checkpoint, ordered=False) as again:
            resumed = list(again)
        assert isinstance(again.batch, ProviderBatch)
        assert again.batch.resumed == 7
        assert client.stats().batch_calls == 7  # the first run's; the second collected none
    assert [r.text for r in results] == prompts
    assert all(r.completion and r.completion.service_tier == BATCH_TIER for r in results)
    assert sorted(r.index for r in resumed) == list(range(7))
    assert all(r.resumed for r in resumed)
    assert server.server.batches.created == 3  # 3 + 3 + 1, none again
    assert server.server.batches.items_submitted() == dict.fromkeys(range(7), 1)
    assert server.server.request_count == 0  # nothing went online


def test_leaving_a_map_early_cancels_what_is_in_flight(
    server: ThreadedServer, tmp_path: Path
) -> None:
    server.enqueue(Reply.echo(), *[Reply.stall()] * 4)
    client = SyncClient(base_url=server.url, model="m")
    try:
        with client.map([f"p{i}" for i in range(100)], concurrency=5, ordered=False) as results:
            for result in results:
                assert result.ok
                break
        # The stalled calls were cancelled and released their connections.
        assert client.client._pool.connections_in_use() == 0
        assert server.server.request_count < 10
    finally:
        runner = client._state["runner"]
        client.close()
    assert runner.leftover_tasks == 0
    server.wait_open_connections(0)


def test_many_threads_share_one_client(server: ThreadedServer, client: SyncClient) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        texts = list(pool.map(lambda i: client.chat(f"t{i}").text, range(64)))
    assert texts == [f"t{i}" for i in range(64)]
    assert server.server.connection_count <= 8  # one pooled session for every thread
    assert len(loop_threads()) == 1


# --- event loops ---------------------------------------------------------------------


def test_works_inside_asyncio_run(server: ThreadedServer) -> None:
    before = set(threading.enumerate())

    async def main() -> str | None:
        with SyncClient(base_url=server.url, model="m") as client:
            return client.chat("from inside a running loop").text

    assert asyncio.run(main()) == "from inside a running loop"
    assert set(threading.enumerate()) == before


async def test_works_inside_the_running_loop_of_an_async_test(server: ThreadedServer) -> None:
    # What a Jupyter cell does: blocking calls while an event loop runs in this thread.
    asyncio.get_running_loop()
    with SyncClient(base_url=server.url, model="m") as client:
        assert client.chat("jupyter").text == "jupyter"
        assert [r.text for r in client.map(["a", "b"])] == ["a", "b"]
        with client.stream("x y") as stream:
            assert list(stream.text_deltas()) == ["x ", "y"]


def test_calling_it_from_its_own_loop_thread_is_an_error(client: SyncClient) -> None:
    def source() -> Iterator[str]:  # batch input is read on the client's loop thread
        client.chat("nested")
        yield "never"

    with pytest.raises(RuntimeError, match="from its own event loop"):
        list(client.map(source()))


# --- closing -------------------------------------------------------------------------


def test_close_stops_the_thread_and_leaves_nothing_behind(
    server: ThreadedServer, tmp_path: Path
) -> None:
    before = set(threading.enumerate())
    client = SyncClient(base_url=server.url, model="m")
    assert repr(client) == "<SyncClient not started>"
    assert loop_threads() == []  # the loop thread starts on the first call
    client.chat("a")
    with client.stream("b c") as stream:
        list(stream)
    list(client.map(["x", "y"], checkpoint=tmp_path / "c.jsonl"))  # fsync uses a worker
    assert len(loop_threads()) == 1
    assert "OpenAIBackend" in repr(client)
    runner = client._state["runner"]
    client.close()
    assert set(threading.enumerate()) == before
    assert runner.loop.is_closed()
    assert runner.leftover_tasks == 0
    server.wait_open_connections(0)
    assert client.closed
    assert repr(client) == "<SyncClient closed>"
    client.close()  # twice is fine
    with pytest.raises(ClientClosedError):
        client.chat("after close")
    with pytest.raises(ClientClosedError):
        client.stream("after close")
    with pytest.raises(ClientClosedError):
        client.map(["after close"])
    with pytest.raises(ClientClosedError), client:
        pass


def test_a_client_never_used_starts_no_thread() -> None:
    before = set(threading.enumerate())
    with SyncClient(base_url="http://127.0.0.1:9/v1", model="m"):
        pass
    assert set(threading.enumerate()) == before


def test_a_forgotten_client_is_closed_when_collected(server: ThreadedServer) -> None:
    client = SyncClient(base_url=server.url, model="m")
    client.chat("hi")
    (thread,) = loop_threads()
    del client
    gc.collect()
    assert not thread.is_alive()
    server.wait_open_connections(0)


def test_a_script_that_never_closes_anything_still_exits_cleanly(
    server: ThreadedServer, tmp_path: Path
) -> None:
    script = tmp_path / "forgetful.py"
    script.write_text(
        "from llmfast.sync import SyncClient\n"
        f"client = SyncClient(base_url={server.url!r}, model='m')\n"
        "print(client.chat('hi').text)\n"
        "stream = iter(client.stream('a b c d'))\n"
        "next(stream)\n"
        "batch = iter(client.map(['x'] * 50, concurrency=4))\n"
        "print(next(batch).text)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "hi\nx\n", "")


def test_bad_configuration_surfaces_on_the_first_call_and_leaves_no_thread() -> None:
    before = set(threading.enumerate())
    client = SyncClient(base_url="ftp://nope", model="m")
    with pytest.raises(ConfigurationError, match="base_url"):
        client.chat("x")
    assert set(threading.enumerate()) == before
    client.close()


def test_closing_while_other_threads_wait_fails_their_calls_without_a_hang(
    server: ThreadedServer,
) -> None:
    server.enqueue(*[Reply.stall()] * 4)
    client = SyncClient(base_url=server.url, model="m")
    with ThreadPoolExecutor(max_workers=4) as pool:
        calls = [pool.submit(client.chat, f"t{i}") for i in range(4)]
        server.wait_for_requests(4)
        client.close()
        for call in calls:
            with pytest.raises(LLMFastError):
                call.result(timeout=10)
    assert loop_threads() == []


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
def test_ctrl_c_while_waiting_cancels_the_call(server: ThreadedServer) -> None:
    server.enqueue(Reply.stall())
    client = SyncClient(base_url=server.url, model="m")
    main_thread = threading.get_ident()

    def interrupt() -> None:
        server.wait_for_requests(1)
        signal.pthread_kill(main_thread, signal.SIGINT)

    interrupter = threading.Thread(target=interrupt)
    interrupter.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            client.chat("stalls")
    finally:
        interrupter.join()
    server.wait_open_connections(0)  # the call was cancelled and its connection closed
    assert client.chat("still works").text == "still works"
    runner = client._state["runner"]
    client.close()
    assert runner.leftover_tasks == 0


def test_the_sync_client_steers_the_cache_per_call(server: ThreadedServer) -> None:
    from llmfast.layers import Cache, MemoryStore

    layers = [Cache(store=MemoryStore())]
    with SyncClient(base_url=server.url, model="m", layers=layers) as client:
        client.chat("same", temperature=0)
        client.chat("same", temperature=0)  # a hit
        client.chat("same", temperature=0, cache="bypass")
        with client.stream("same", temperature=0, cache="bypass") as stream:
            stream.collect()
        client.embed("v", cache="bypass")
    assert server.server.request_count == 4
