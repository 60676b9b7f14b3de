"""The batch runner: order, failures, bounded lazy input, progress and the checkpoint.

Calls go over real HTTP to ``llmfast.testing.MockServer``. Two tests that need to
decide exactly when each call finishes (the in-flight window) or to run many thousand
items fast (flat memory) use ``GatedBackend``, an in-process backend: the batch runner
under test is the real one either way.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llmfast
from llmfast import (
    BadRequestError,
    ChatCompletion,
    ChatRequest,
    Choice,
    Client,
    ConfigurationError,
    Request,
    Response,
    ResponseMessage,
    Usage,
    UserMessage,
)
from llmfast.batch import ORDERED_WINDOW, BatchResult, run_batch
from llmfast.checkpoint import Checkpoint, CheckpointError, Record, request_hash
from llmfast.testing import MockServer, Reply


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with MockServer() as server:
        yield server


@pytest.fixture
async def client(server: MockServer) -> AsyncIterator[Client]:
    async with Client(base_url=server.url, model="mock-model") as client:
        yield client


def prompts(n: int) -> list[str]:
    return [f"prompt {i}" for i in range(n)]


def lines(path: Path) -> list[dict[str, Any]]:
    return [msgspec.json.decode(line) for line in path.read_bytes().splitlines()]


def sent_prompts(server: MockServer) -> list[str]:
    return [r.json["messages"][-1]["content"] for r in server.requests]


class GatedBackend:
    """An in-process backend: answers with the prompt, once the test opens its gate
    (prompts without a gate are answered at once)."""

    kind = "gated"
    model: str | None = "m"

    def __init__(self, gated: tuple[str, ...] = ()) -> None:
        self.gates = {prompt: asyncio.Event() for prompt in gated}
        self.started = 0
        self.started_event = asyncio.Event()
        self.want = 0

    def bind(self, pool: object) -> None:
        pass

    async def warmup(self, connections: int) -> int:
        return 0

    async def aclose(self) -> None:
        pass

    async def send(self, request: Request, /) -> Response:
        text = request.body.messages[-1]["content"]  # type: ignore[union-attr,index]
        self.started += 1
        if self.started >= self.want:
            self.started_event.set()
        gate = self.gates.get(text)
        if gate is not None:
            await gate.wait()
        message = ResponseMessage(content=text)
        result = ChatCompletion(choices=[Choice(message=message)], usage=Usage(1, 1, 2))
        return Response(request, result=result)

    async def wait_started(self, n: int) -> None:
        self.want = n
        if self.started < n:
            self.started_event.clear()
            await asyncio.wait_for(self.started_event.wait(), 5)


# --- results ---------------------------------------------------------------------------


async def test_results_come_in_input_order_even_when_calls_finish_out_of_order(
    server: MockServer, client: Client
) -> None:
    # The first request to arrive is answered last.
    server.enqueue(Reply.echo(delay=0.05))
    batch = run_batch(client, prompts(20), concurrency=8)
    results = await batch
    assert [r.index for r in results] == list(range(20))
    assert [r.text for r in results] == prompts(20)
    assert all(r.ok and not r.resumed and r.error is None for r in results)
    assert server.request_count == 20
    assert (batch.succeeded, batch.failed, batch.resumed) == (20, 0, 0)
    usages = [r.completion.usage for r in results if r.completion is not None]
    assert batch.tokens == sum(u.total_tokens for u in usages if u is not None) > 0
    assert results[3].request_hash == request_hash(results[3].request)


async def test_unordered_results_come_as_they_finish() -> None:
    backend = GatedBackend(gated=("0", "1"))
    async with (
        Client(backend) as client,
        run_batch(client, ["0", "1", "2"], concurrency=3, ordered=False) as batch,
    ):
        results = aiter(batch)
        first = await anext(results)
        assert first.index == 2  # 0 and 1 are still held
        backend.gates["1"].set()
        assert (await anext(results)).index == 1
        backend.gates["0"].set()
        assert (await anext(results)).index == 0
        with pytest.raises(StopAsyncIteration):
            await anext(results)


async def test_a_failed_item_is_its_result_and_the_batch_goes_on(
    server: MockServer, client: Client
) -> None:
    server.enqueue(Reply.echo(), Reply.error(400, message="bad item"))
    batch = run_batch(client, prompts(6), concurrency=1)
    results = await batch
    assert [r.ok for r in results] == [True, False, True, True, True, True]
    failed = results[1]
    assert isinstance(failed.error, BadRequestError)
    assert failed.completion is None
    assert failed.text is None
    assert "batch item 1" in getattr(failed.error, "__notes__", ["batch item 1"])
    assert (batch.succeeded, batch.failed) == (5, 1)


async def test_stop_on_error_raises_the_first_failure_and_records_it(
    server: MockServer, client: Client, tmp_path: Path
) -> None:
    server.enqueue(Reply.error(400, message="bad item"))
    checkpoint = tmp_path / "run.jsonl"
    seen: list[BatchResult] = []
    with pytest.raises(BadRequestError, match="bad item"):
        async with run_batch(
            client, prompts(50), concurrency=1, stop_on_error=True, checkpoint=checkpoint
        ) as batch:
            seen.extend([result async for result in batch])
    assert seen == []
    assert server.request_count == 1  # nothing was sent after the failure
    (record,) = lines(checkpoint)
    assert record["index"] == 0
    assert record["error"] == {
        "type": "BadRequestError",
        "message": "HTTP 400: bad item (request id req_1)",
        "status": 400,
    }


async def test_every_kind_of_item_becomes_the_right_request(
    server: MockServer, client: Client
) -> None:
    items: list[llmfast.batch.BatchItem] = [
        "plain prompt",
        [{"role": "system", "content": "sys"}, UserMessage("typed")],
        ChatRequest(model="other-model", messages=[{"role": "user", "content": "whole"}]),
        {"prompt": "dict prompt", "system": "be brief", "max_tokens": 7},
        {"messages": [{"role": "user", "content": "dict messages"}], "model": "m2", "seed": 3},
    ]
    results = await run_batch(client, items, concurrency=1, temperature=0.5)
    assert [r.text for r in results] == [
        "plain prompt",
        "typed",
        "whole",
        "dict prompt",
        "dict messages",
    ]
    bodies = [r.json for r in server.requests]
    assert bodies[0] == {
        "model": "mock-model",
        "messages": [{"role": "user", "content": "plain prompt"}],
        "temperature": 0.5,
    }
    assert bodies[1]["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "typed"},
    ]
    assert bodies[2] == {"model": "other-model", "messages": [{"role": "user", "content": "whole"}]}
    assert bodies[3] == {
        "model": "mock-model",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "dict prompt"},
        ],
        "temperature": 0.5,
        "max_tokens": 7,
    }
    assert bodies[4]["model"] == "m2"
    assert bodies[4]["seed"] == 3


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (42, "item 2: expected a prompt string"),
        ({"promt": "typo"}, 'item 2: needs "messages" or "prompt"'),
        ({"prompt": "x", "temperature": "hot"}, "item 2: Expected `float | null`, got `str`"),
        ({"prompt": "x", "tempreature": 1}, "unknown field `tempreature`"),
        ({"prompt": "x", "messages": []}, "either prompt or messages"),
        ({"prompt": 3}, "must be strings"),
        ([], "non-empty list of messages"),
        ([{"content": "no role"}], "with a role"),
    ],
)
async def test_a_bad_item_raises_naming_it_before_it_is_sent(
    server: MockServer, client: Client, item: object, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("|", r"\|")):
        await run_batch(client, ["a", "b", item, "d"], concurrency=1)  # type: ignore[list-item]
    assert "d" not in sent_prompts(server)


async def test_no_model_anywhere_is_a_clear_error(server: MockServer) -> None:
    async with Client(base_url=server.url) as client:
        with pytest.raises(ConfigurationError, match="item 0: no model"):
            await run_batch(client, ["a"])
    assert server.request_count == 0


def test_bad_arguments_are_rejected_at_once() -> None:
    client = Client(base_url="http://127.0.0.1:9/v1", model="m")
    with pytest.raises(ConfigurationError, match="concurrency"):
        run_batch(client, ["a"], concurrency=0)
    with pytest.raises(ConfigurationError, match="not a single item"):
        run_batch(client, "one prompt")


async def test_an_async_iterable_input_works(server: MockServer, client: Client) -> None:
    async def source() -> AsyncIterator[str]:
        for prompt in prompts(5):
            yield prompt

    results = await run_batch(client, source(), concurrency=2)
    assert [r.text for r in results] == prompts(5)


async def test_a_batch_runs_once(client: Client) -> None:
    batch = run_batch(client, ["a"])
    assert len(await batch) == 1
    with pytest.raises(RuntimeError, match="only once"):
        aiter(batch)


# --- a bounded window over a lazy input --------------------------------------------


async def test_ordered_mode_pulls_at_most_the_window_ahead_of_a_slow_item() -> None:
    concurrency = 4
    window = concurrency * ORDERED_WINDOW
    pulled = 0

    def source() -> Iterator[str]:
        nonlocal pulled
        for i in range(1000):
            pulled += 1
            yield str(i)

    backend = GatedBackend(gated=("0",))
    async with (
        Client(backend) as client,
        run_batch(client, source(), concurrency=concurrency) as batch,
    ):
        results = aiter(batch)
        first = asyncio.ensure_future(anext(results))
        await backend.wait_started(window)
        for _ in range(20):  # let the runner go as far as it would
            await asyncio.sleep(0)
        assert pulled == window  # item 0 blocks; nothing beyond the window was read
        assert not first.done()
        backend.gates["0"].set()
        assert (await first).index == 0
        rest = [result.index async for result in results]
    assert rest == list(range(1, 1000))
    assert pulled == 1000


async def test_unordered_mode_keeps_at_most_concurrency_in_flight() -> None:
    pulled = 0
    most_ahead = 0

    def source() -> Iterator[str]:
        nonlocal pulled
        for i in range(500):
            pulled += 1
            yield str(i)

    backend = GatedBackend()
    handed_out = 0
    async with (
        Client(backend) as client,
        run_batch(client, source(), concurrency=8, ordered=False) as batch,
    ):
        async for _ in batch:
            handed_out += 1
            most_ahead = max(most_ahead, pulled - handed_out)
    assert handed_out == 500
    assert most_ahead <= 8


async def test_memory_stays_flat_as_the_input_grows(tmp_path: Path) -> None:
    async def peak(n: int, checkpoint: Path | None = None, *, traced: bool = True) -> int:
        async with Client(GatedBackend()) as client:
            if traced:
                tracemalloc.start()
            try:
                base = tracemalloc.get_traced_memory()[0]
                count = 0
                async with run_batch(
                    client,
                    (f"prompt {i}" for i in range(n)),
                    concurrency=32,
                    checkpoint=checkpoint,
                    fsync=False,
                ) as batch:
                    async for _ in batch:
                        count += 1
                assert count == n
                return tracemalloc.get_traced_memory()[1] - base
            finally:
                tracemalloc.stop()

    await peak(200)  # warm up one-time allocations
    small, large = await peak(500), await peak(4_000)
    # Keeping each result (about 2 KB) would take 8 MB more; allow under 128 bytes an item.
    assert large < small + 512 * 1024, (small, large)
    # Resuming from a checkpoint keeps 16 bytes per index, not the results.
    await peak(4_000, tmp_path / "c.jsonl", traced=False)
    resumed = await peak(4_000, tmp_path / "c.jsonl")
    assert resumed < small + 512 * 1024, (small, resumed)


# --- the checkpoint ----------------------------------------------------------------


async def test_a_rerun_skips_what_finished_and_hands_it_back(
    server: MockServer, client: Client, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "run.jsonl"
    async with run_batch(client, prompts(30), concurrency=4, checkpoint=checkpoint) as batch:
        async for result in batch:
            if result.index == 9:
                break
    first_run = lines(checkpoint)
    done = {record["index"] for record in first_run}
    assert set(range(10)) <= done
    assert len(done) == len(first_run) == server.request_count  # one record per finished call
    server.reset()

    batch = run_batch(client, prompts(30), concurrency=4, checkpoint=checkpoint)
    results = await batch
    assert [r.text for r in results] == prompts(30)
    assert [r.index for r in results if r.resumed] == sorted(done)
    assert sorted(sent_prompts(server)) == sorted(f"prompt {i}" for i in range(30) if i not in done)
    assert batch.resumed == len(done)
    assert sorted(record["index"] for record in lines(checkpoint)) == list(range(30))


async def test_failed_items_are_retried_on_the_next_run(server: MockServer, tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.jsonl"
    server.enqueue(Reply.echo(), Reply.error(500))
    # One attempt per call, so the 500 fails its item (a default client would retry it).
    client = Client(base_url=server.url, model="mock-model", max_retries=0)
    first = await run_batch(client, prompts(4), concurrency=1, checkpoint=checkpoint)
    assert [r.ok for r in first] == [True, False, True, True]
    server.reset()
    second = await run_batch(client, prompts(4), concurrency=1, checkpoint=checkpoint)
    assert [r.ok for r in second] == [True] * 4
    assert [r.resumed for r in second] == [True, False, True, True]
    assert sent_prompts(server) == ["prompt 1"]
    records = lines(checkpoint)
    assert [(r["index"], "error" in r) for r in records] == [
        (0, False),
        (1, True),
        (2, False),
        (3, False),
        (1, False),
    ]
    # A third run sends nothing: the success recorded last for item 1 wins.
    server.reset()
    third = await run_batch(client, prompts(4), concurrency=1, checkpoint=checkpoint)
    assert all(r.resumed for r in third)
    assert server.request_count == 0
    await client.aclose()


async def test_a_changed_input_is_a_clear_error(client: Client, tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.jsonl"
    await run_batch(client, prompts(3), checkpoint=checkpoint)
    changed = [*prompts(3)]
    changed[1] = "something else"
    with pytest.raises(CheckpointError, match="item 1 is not the request"):
        await run_batch(client, changed, checkpoint=checkpoint)
    # A different model is a different request too.
    with pytest.raises(CheckpointError, match="item 0"):
        await run_batch(client, prompts(3), checkpoint=checkpoint, model="other")


async def test_a_half_written_last_line_is_ignored_and_truncated(
    server: MockServer, client: Client, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "run.jsonl"
    await run_batch(client, prompts(5), concurrency=1, checkpoint=checkpoint)
    whole = checkpoint.read_bytes()
    records = whole.splitlines(keepends=True)
    # Crash in the middle of writing the record of item 4.
    torn = b"".join(records[:4]) + records[4][: len(records[4]) // 2]
    checkpoint.write_bytes(torn)
    server.reset()
    results = await run_batch(client, prompts(5), concurrency=1, checkpoint=checkpoint)
    assert [r.resumed for r in results] == [True, True, True, True, False]
    assert sent_prompts(server) == ["prompt 4"]
    after = checkpoint.read_bytes()
    assert after.startswith(b"".join(records[:4]) + b'{"index":4,')  # torn bytes gone
    assert [r["index"] for r in lines(checkpoint)] == [0, 1, 2, 3, 4]


async def test_a_file_that_is_not_a_checkpoint_is_never_modified(
    client: Client, tmp_path: Path
) -> None:
    for content in (
        b'"prompt 0"\n"prompt 1"\n',  # an input file given as the checkpoint
        b'{"index":0,"hash":"x"}\nnot json\n{"index":1,"hash":"y"}\n',  # a corrupt middle
        b"no newline at the end",  # a foreign one-line file
    ):
        path = tmp_path / "file.jsonl"
        path.write_bytes(content)
        with pytest.raises(CheckpointError, match="not a checkpoint record"):
            await run_batch(client, prompts(2), checkpoint=path)
        assert path.read_bytes() == content


@pytest.mark.skipif(os.name == "nt", reason="advisory file locks are POSIX")
async def test_two_batches_cannot_share_a_checkpoint_at_once(
    server: MockServer, client: Client, tmp_path: Path
) -> None:
    server.enqueue(Reply.echo(delay=0.05))
    checkpoint = tmp_path / "run.jsonl"
    async with run_batch(client, prompts(2), concurrency=1, checkpoint=checkpoint) as first:
        results = aiter(first)
        pending = asyncio.ensure_future(anext(results))
        await server.wait_for_requests(1)
        with pytest.raises(CheckpointError, match="in use by another batch"):
            await run_batch(client, prompts(2), checkpoint=checkpoint)
        assert (await pending).index == 0


async def test_fsync_group_commit_records_every_item(client: Client, tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.jsonl"
    results = await run_batch(client, prompts(200), concurrency=32, checkpoint=checkpoint)
    assert len(results) == 200
    assert sorted(r["index"] for r in lines(checkpoint)) == list(range(200))


record_strategy = st.builds(
    Record,
    index=st.integers(0, 50),
    hash=st.text(alphabet="0123456789abcdef", min_size=1, max_size=40),
    completion=st.one_of(
        st.none(),
        st.builds(
            ChatCompletion,
            id=st.text(max_size=20),
            choices=st.lists(
                st.builds(Choice, message=st.builds(ResponseMessage, content=st.text())),
                max_size=2,
            ),
        ),
    ),
)


@settings(max_examples=100, deadline=None)
@given(records=st.lists(record_strategy, max_size=12), data=st.data())
def test_opening_a_checkpoint_cut_anywhere_finds_exactly_the_whole_records(
    records: list[Record], data: st.DataObject
) -> None:
    encoded = b"".join(msgspec.json.encode(record) + b"\n" for record in records)
    cut = data.draw(st.integers(0, len(encoded)), label="cut")
    kept = encoded[:cut].count(b"\n")
    good_end = sum(len(msgspec.json.encode(r)) + 1 for r in records[:kept])
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "c.jsonl")
        with open(path, "wb") as file:
            file.write(encoded[:cut])
        checkpoint = Checkpoint(path, fsync=False)
        checkpoint.open()
        try:
            expected: dict[int, Record] = {}
            for record in records[:kept]:  # a success is final, else the last record wins
                known = expected.get(record.index)
                if known is None or known.completion is None:
                    expected[record.index] = record
            for index in range(52):
                want = expected.get(index)
                if want is None:
                    assert checkpoint.find(index, "") is None
                else:
                    assert checkpoint.find(index, want.hash) == want
            assert checkpoint.succeeded == sum(r.completion is not None for r in expected.values())
            assert os.path.getsize(path) == good_end  # the torn tail is gone
        finally:
            asyncio.run(checkpoint.close())


# --- progress ------------------------------------------------------------------------


async def test_progress_bar_shows_done_failed_and_tokens(
    server: MockServer, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    server.enqueue(Reply.error(400))
    await run_batch(client, prompts(5), concurrency=1, progress=True)
    err = capsys.readouterr().err
    assert "5/5" in err
    assert "failed=1" in err
    assert "tokens=" in err


async def test_progress_is_off_by_default_when_not_interactive(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = run_batch(client, prompts(3))
    assert batch.progress is False  # stderr is captured, not a terminal
    await batch
    assert capsys.readouterr().err == ""


async def test_progress_counts_resumed_items_as_already_done(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = tmp_path / "run.jsonl"
    await run_batch(client, prompts(3), checkpoint=checkpoint)
    await run_batch(client, prompts(5), checkpoint=checkpoint, progress=True)
    err = capsys.readouterr().err
    assert "5/5" in err
    assert "failed=0" in err
