"""A ``Client`` made without ``layers=`` retries; ``max_retries=`` and ``layers=`` shape it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

import llmfast
from llmfast import Client, ConfigurationError, SyncClient
from llmfast.cli import _client, _parser
from llmfast.client import DEFAULT_MAX_RETRIES
from llmfast.layers import Retry
from llmfast.layers.retry import set_testing
from llmfast.testing import MockServer, Reply
from tests.test_sync import ThreadedServer


@pytest.fixture
def instant_retries() -> Iterator[None]:
    """Retry waits are instant (the events still report the wait asked for)."""
    set_testing(True)
    try:
        yield
    finally:
        set_testing(False)


def retry_waits(events: list[llmfast.Event]) -> list[float | None]:
    return [e.elapsed for e in events if e.name == "retry"]


async def test_a_default_client_retries_a_429_honouring_retry_after(
    server: MockServer, instant_retries: None
) -> None:
    events: list[llmfast.Event] = []
    server.enqueue(Reply.error(429, retry_after=2))
    async with Client(base_url=server.url, model="m", on_event=events.append) as client:
        assert (await client.chat("hello")).text == "hello"
    assert server.request_count == 2
    assert retry_waits(events) == [2.0]  # the wait the server asked for


async def test_a_default_client_retries_a_reset_connection_and_a_stream(
    server: MockServer, instant_retries: None
) -> None:
    server.enqueue(Reply.reset(), Reply.error(503))
    async with (
        Client(base_url=server.url, model="m") as client,
        client.stream("a b c") as stream,
    ):
        assert (await stream.collect()).text == "a b c"
    assert server.request_count == 3


async def test_a_default_client_retries_a_stream_interrupted_before_any_content(
    server: MockServer, instant_retries: None
) -> None:
    # What llama.cpp's server sends a stream it interrupts: a role chunk, then [DONE].
    server.enqueue(Reply.end_unfinished(after_chunks=1))
    async with (
        Client(base_url=server.url, model="m") as client,
        client.stream("the real answer") as stream,
    ):
        assert (await stream.collect()).text == "the real answer"
    assert server.request_count == 2


async def test_the_default_gives_up_after_three_attempts(
    server: MockServer, instant_retries: None
) -> None:
    server.default = Reply.error(503)
    async with Client(base_url=server.url, model="m") as client:
        with pytest.raises(llmfast.ServerError):
            await client.chat("x")
    assert server.request_count == DEFAULT_MAX_RETRIES + 1 == 3


async def test_the_default_never_waits_past_the_deadline(server: MockServer) -> None:
    server.enqueue(Reply.error(429, retry_after=30))
    async with Client(base_url=server.url, model="m") as client:
        started = time.monotonic()
        with pytest.raises(llmfast.RateLimitError):
            await client.chat("x", timeout=5)
        assert time.monotonic() - started < 4  # gave up at once: 30 s > the 5 s deadline
    assert server.request_count == 1


async def test_client_errors_are_not_retried_by_default(server: MockServer) -> None:
    server.enqueue(Reply.error(401))
    async with Client(base_url=server.url, model="m") as client:
        with pytest.raises(llmfast.AuthenticationError):
            await client.chat("x")
    assert server.request_count == 1


def test_repr_shows_the_default_stack() -> None:
    url = "http://127.0.0.1:9/v1"
    assert repr(Client(base_url=url, model="m")).startswith(
        "<Client Retry(max_attempts=3) → OpenAIBackend("
    )
    assert repr(Client(base_url=url, max_retries=4)).startswith("<Client Retry(max_attempts=5) → ")
    assert repr(Client(base_url=url, max_retries=0)).startswith("<Client OpenAIBackend(")
    assert repr(Client(base_url=url, layers=[])).startswith("<Client OpenAIBackend(")
    explicit = Client(base_url=url, layers=[Retry(max_attempts=7)])
    assert repr(explicit).startswith("<Client Retry(max_attempts=7) → OpenAIBackend(")


@pytest.mark.parametrize("options", [{"max_retries": 0}, {"layers": []}])
async def test_max_retries_0_and_no_layers_make_one_attempt(
    server: MockServer, options: dict[str, object]
) -> None:
    server.default = Reply.error(503)
    async with Client(base_url=server.url, model="m", **options) as client:  # type: ignore[arg-type]
        assert client.find_layer(llmfast.layers.RetryLayer) is None
        with pytest.raises(llmfast.ServerError):
            await client.chat("x")
    assert server.request_count == 1


async def test_max_retries_sets_the_attempts(server: MockServer, instant_retries: None) -> None:
    server.default = Reply.error(500)
    async with Client(base_url=server.url, model="m", max_retries=5) as client:
        with pytest.raises(llmfast.ServerError):
            await client.chat("x")
    assert server.request_count == 6


def test_max_retries_with_explicit_layers_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"Retry\(max_attempts=max_retries \+ 1\)"):
        Client(base_url="http://127.0.0.1:9/v1", layers=[Retry()], max_retries=3)
    with pytest.raises(ConfigurationError, match="max_retries"):
        Client(base_url="http://127.0.0.1:9/v1", layers=[], max_retries=0)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_max_retries_must_be_a_whole_number(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="max_retries must be an int >= 0"):
        Client(base_url="http://127.0.0.1:9/v1", max_retries=bad)  # type: ignore[arg-type]


def test_a_sync_client_takes_max_retries(instant_retries: None) -> None:
    server = ThreadedServer()
    try:
        server.enqueue(Reply.error(503))
        with SyncClient(base_url=server.url, model="m") as client:
            assert client.chat("again").text == "again"
        assert server.server.request_count == 2
        server.enqueue(Reply.error(503))
        with (
            SyncClient(base_url=server.url, model="m", max_retries=0) as client,
            pytest.raises(llmfast.ServerError),
        ):
            client.chat("once")
        assert server.server.request_count == 3
    finally:
        server.close()


def test_the_command_line_takes_max_retries_like_the_sdk(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = _parser()
    url = "http://h/v1"
    chain = repr(_client(parser.parse_args(["chat", "--base-url", url])))
    assert chain.startswith("<Client Retry(max_attempts=5) → OpenAIBackend(")  # the CLI's default
    chain = repr(_client(parser.parse_args(["chat", "--base-url", url, "--max-retries", "2"])))
    assert chain.startswith("<Client Retry(max_attempts=3) → OpenAIBackend(")
    chain = repr(_client(parser.parse_args(["chat", "--base-url", url, "--max-retries", "0"])))
    assert chain.startswith("<Client OpenAIBackend(")
    with pytest.raises(SystemExit):
        parser.parse_args(["chat", "--max-retries", "1", "--max-attempts", "2"])
    assert "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["chat", "--max-retries", "-1"])
