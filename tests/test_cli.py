"""The ``llmfast`` command line against a real local server.

Most tests run ``llmfast.cli.main`` in a worker thread (it runs its own event loop)
while the test's loop serves ``MockServer``; the ones about processes — a SIGKILL in
the middle of a batch, stdin, ``serve-mock``, a 10,000-line file — start
``python -m llmfast`` as a subprocess.
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
import shlex
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

from llmfast.cli import _client, _parser, main
from llmfast.testing import MockServer, Reply

REPO_ROOT = Path(__file__).resolve().parent.parent
PROVIDER_VARIABLES = ("LLMFAST_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY", "LLMFAST_MODEL")


@pytest.fixture(autouse=True)
def _no_provider_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*PROVIDER_VARIABLES, "LLMFAST_PROVIDER"):
        monkeypatch.delenv(name, raising=False)


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    return env


async def run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    """``python -m llmfast ARGS`` in a subprocess: (exit status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "llmfast",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_env(),
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def cli(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``llmfast.cli.main(argv)`` in a worker thread: (exit status, stdout, stderr)."""
    try:
        status = await asyncio.to_thread(main, list(argv))
    except SystemExit as exc:  # argparse's usage errors
        status = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    return status, out, err


def write_lines(path: Path, items: Sequence[object]) -> None:
    path.write_bytes(b"".join(msgspec.json.encode(item) + b"\n" for item in items))


def records(path: Path) -> list[dict[str, Any]]:
    return [msgspec.json.decode(line) for line in path.read_bytes().splitlines()]


def text_of(record: dict[str, Any]) -> str:
    text: str = record["completion"]["choices"][0]["message"]["content"]
    return text


# --- chat ------------------------------------------------------------------------------


async def test_chat_streams_the_answer(server: MockServer) -> None:
    status, out, err = await run("chat", "--base-url", server.url, "--model", "m", "hi there")
    assert (status, out, err) == (0, "hi there\n", "")
    (request,) = server.requests
    assert request.json["stream"] is True
    assert request.json["messages"] == [{"role": "user", "content": "hi there"}]


async def test_chat_reads_a_piped_prompt_from_stdin(server: MockServer) -> None:
    status, out, _ = await run(
        "chat", "--base-url", server.url, "--model", "m", stdin=b"from stdin\n"
    )
    assert (status, out) == (0, "from stdin\n")


async def test_chat_options_reach_the_request(
    server: MockServer, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["chat", "--base-url", server.url, "--model", "m", "--system", "be brief"]
    argv += ["--max-tokens", "9", "--temperature", "0.5", "--no-stream", "question"]
    assert await cli(argv, capsys) == (0, "question\n", "")
    assert server.requests[0].json == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "question"},
        ],
        "temperature": 0.5,
        "max_tokens": 9,
    }


async def test_chat_failures_are_clear_with_a_nonzero_exit(
    server: MockServer, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = await cli(["chat", "hi"], capsys)
    assert status == 2
    assert "no provider configured" in err
    status, _, err = await cli(["chat", "--base-url", server.url, "hi"], capsys)
    assert status == 2
    assert "no model" in err
    status, _, err = await cli(["chat", "--base-url", server.url, "--model", "m", " "], capsys)
    assert (status, "the prompt is empty" in err) == (2, True)
    status, _, err = await cli(["chat", "--provider", "nope", "hi"], capsys)
    assert (status, "unknown provider 'nope'" in err) == (2, True)
    server.enqueue(Reply.error(401, message="bad key"))
    status, _, err = await cli(["chat", "--base-url", server.url, "--model", "m", "hi"], capsys)
    assert status == 1
    assert err == "llmfast: error: AuthenticationError: HTTP 401: bad key (request id req_1)\n"


async def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = await cli(["--version"], capsys)
    assert (status, out.startswith("llmfast ")) == (0, True)
    status, out, _ = await cli(["batch", "--help"], capsys)
    assert status == 0
    assert "--concurrency" in out
    assert "--rpm" in out


# --- batch ---------------------------------------------------------------------------


async def test_batch_runs_a_file_and_a_rerun_resumes(
    server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(
        source,
        [
            "plain",
            {"prompt": "with options", "max_tokens": 5},
            [{"role": "user", "content": "messages"}],
        ],
    )
    argv = ["batch", str(source), "-o", str(output), "--base-url", server.url, "--model", "m"]
    status, out, err = await cli([*argv, "--temperature", "0"], capsys)
    assert status == 0, err
    assert out == ""
    assert "3 of 3 done (0 resumed), 0 failed" in err
    done = sorted(records(output), key=lambda r: r["index"])
    assert [text_of(r) for r in done] == ["plain", "with options", "messages"]
    assert server.requests[1].json["max_tokens"] == 5
    assert all(r.json["temperature"] == 0 for r in server.requests)

    status, _, err = await cli([*argv, "--temperature", "0"], capsys)
    assert status == 0
    assert "3 of 3 done (3 resumed)" in err
    assert server.request_count == 3
    # Other parameters make other requests: the output file says so instead of mixing.
    status, _, err = await cli([*argv, "--temperature", "1"], capsys)
    assert status == 2
    assert "item 0 is not the request this checkpoint recorded" in err


async def test_a_malformed_line_is_reported_by_number_and_nothing_is_sent(
    server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text('"fine"\n{"prompt": \n"fine"\n\n{"prompt": "x", "temprature": 1}\n')
    argv = ["batch", str(source), "-o", str(output), "--base-url", server.url, "--model", "m"]
    status, _, err = await cli(argv, capsys)
    assert status == 2
    assert f"{source}: line 2: not JSON (the value is cut short)\n" in err
    assert f"{source}: line 4: empty line" in err
    assert f"{source}: line 5: Object contains unknown field `temprature`" in err
    assert "line 1:" not in err
    assert "line 3:" not in err
    assert f"{source}: 3 malformed line(s); nothing was sent" in err
    assert server.request_count == 0
    assert not output.exists()


async def test_batch_usage_errors(
    server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.jsonl"
    write_lines(source, ["a"])
    url = ["--base-url", server.url]
    status, _, err = await cli(["batch", str(source), "-o", str(source), *url], capsys)
    assert (status, "must not be the input" in err) == (2, True)
    status, _, err = await cli(["batch", str(tmp_path / "missing"), "-o", "x", *url], capsys)
    assert (status, "no such file" in err) == (2, True)
    status, _, err = await cli(["batch", str(source), "-o", "x", "--concurrency", "0"], capsys)
    assert (status, "must be >= 1" in err) == (2, True)
    status, _, err = await cli(["batch", str(source), "-o", str(tmp_path / "o"), *url], capsys)
    assert status == 2
    assert f"{source}: line 1: no model: pass --model" in err


async def test_failed_requests_exit_1_and_a_rerun_retries_only_them(
    server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, [f"p{i}" for i in range(5)])
    argv = ["batch", str(source), "-o", str(output), "--base-url", server.url, "--model", "m"]
    server.enqueue(Reply.echo(), Reply.error(500), Reply.echo(), Reply.error(429))
    status, _, err = await cli([*argv, "--concurrency", "1", "--max-attempts", "1"], capsys)
    assert status == 1
    assert "3 of 5 done (0 resumed), 2 failed" in err
    assert "Run the same command again to retry them" in err
    failed = [r for r in records(output) if "error" in r]
    assert sorted((r["index"], r["error"]["type"]) for r in failed) == [
        (1, "ServerError"),
        (3, "RateLimitError"),
    ]
    server.reset()
    status, _, err = await cli(argv, capsys)
    assert status == 0
    assert "5 of 5 done (3 resumed), 0 failed" in err
    assert sorted(r.json["messages"][0]["content"] for r in server.requests) == ["p1", "p3"]


async def test_stop_on_error_stops_at_the_first_failure(
    server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, [f"p{i}" for i in range(20)])
    server.enqueue(Reply.echo(), Reply.error(400, message="nope"))
    argv = ["batch", str(source), "-o", str(output), "--base-url", server.url, "--model", "m"]
    status, _, err = await cli([*argv, "--concurrency", "1", "--stop-on-error"], capsys)
    assert status == 1
    assert "BadRequestError: HTTP 400: nope" in err
    assert server.request_count == 2
    assert [r["index"] for r in records(output)] == [0, 1]


async def test_batch_shows_a_progress_bar_when_asked(
    server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, [f"p{i}" for i in range(10)])
    argv = ["batch", str(source), "-o", str(output), "--base-url", server.url, "--model", "m"]
    status, _, err = await cli([*argv, "--progress"], capsys)
    assert status == 0
    assert re.search(r"10/10 .*failed=0 tokens=20", err), err
    status, _, err = await cli([*argv, "--no-progress", "--no-fsync"], capsys)
    assert (status, "10/10" in err) == (0, False)


async def test_a_10000_line_file_finishes_with_a_correct_output(
    server: MockServer, tmp_path: Path
) -> None:
    n = 10_000
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, [f"prompt {i}" for i in range(n)])
    status, _, err = await run(
        "batch", str(source), "-o", str(output), "--base-url", server.url, "--model", "m",
        "--concurrency", "64", "--no-progress",
    )  # fmt: skip
    assert status == 0, err
    assert f"{n} of {n} done (0 resumed), 0 failed" in err
    done = records(output)
    assert len(done) == n
    assert sorted(r["index"] for r in done) == list(range(n))
    assert all(text_of(r) == f"prompt {r['index']}" for r in done)
    assert server.request_count == n


async def until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    async def poll() -> None:
        while not condition():  # noqa: ASYNC110 - a file gives no event to wait on
            await asyncio.sleep(0.005)

    try:
        await asyncio.wait_for(poll(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_a_batch_killed_with_sigkill_resumes_without_losing_or_repeating_work(
    tmp_path: Path,
) -> None:
    n, concurrency = 120, 4
    prompts = [f"prompt {i}" for i in range(n)]
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, prompts)

    def recorded() -> int:
        return output.read_bytes().count(b"\n") if output.exists() else 0

    async with MockServer(default=Reply.echo(delay=0.01)) as server:
        argv = [
            sys.executable, "-m", "llmfast", "batch", str(source), "-o", str(output),
            "--base-url", server.url, "--model", "m", "--concurrency", str(concurrency),
        ]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(*argv, env=child_env())
        try:
            await server.wait_for_requests(24, timeout=30)
            await until(lambda: recorded() >= 10, "10 recorded results")
        finally:
            proc.kill()
            await proc.wait()
        assert proc.returncode == -signal.SIGKILL
        finished_at_kill = {r["index"] for r in records(output)}
        assert 10 <= len(finished_at_kill) < n
        # The kill may also cut a record in half: add one to be sure that case is met.
        with output.open("ab") as file:
            file.write(b'{"index":119,"hash":"0123456789abcdef","comple')

        proc = await asyncio.create_subprocess_exec(*argv, env=child_env())
        assert await asyncio.wait_for(proc.wait(), 60) == 0

    done = records(output)  # every line is whole again
    assert sorted(r["index"] for r in done) == list(range(n))
    assert all(text_of(r) == prompts[r["index"]] for r in done)
    asked = collections.Counter(r.json["messages"][0]["content"] for r in server.requests)
    assert set(asked) == set(prompts)
    twice = [prompt for prompt, count in asked.items() if count > 1]
    assert max(asked.values()) <= 2
    assert len(twice) <= concurrency  # only the calls in flight at the kill were repeated
    assert not {prompts.index(p) for p in twice} & finished_at_kill


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_ctrl_c_stops_a_batch_keeping_what_finished(tmp_path: Path) -> None:
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, [f"p{i}" for i in range(200)])
    async with MockServer(default=Reply.echo(delay=0.01)) as server:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "llmfast", "batch", str(source), "-o", str(output),
            "--base-url", server.url, "--model", "m", "--concurrency", "4",
            stderr=asyncio.subprocess.PIPE, env=child_env(),
        )  # fmt: skip
        await server.wait_for_requests(12, timeout=30)
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 130
        done = records(output)  # whole lines only
        assert 0 < len(done) < 200
        assert len({r["index"] for r in done}) == len(done)
        # How far it got, and the exact command that finishes it.
        lines = err.decode().splitlines()
        assert lines[-2] == f"llmfast: interrupted: {len(done)} of 200 done (0 failed) -> {output}"
        python = os.path.basename(sys.executable)
        prefix = f"llmfast: to resume, run the same command: {python} -m llmfast "
        assert lines[-1].startswith(prefix)
        again = shlex.split(lines[-1].removeprefix(prefix))
        assert again == [
            "batch", str(source), "-o", str(output), "--base-url", server.url, "--model", "m",
            "--concurrency", "4",
        ]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "llmfast", *again, stderr=asyncio.subprocess.PIPE,
            env=child_env(),
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err
    assert f"200 of 200 done ({len(done)} resumed)" in err.decode()
    assert sorted(r["index"] for r in records(output)) == list(range(200))


# --- serve-mock, python -m, import cost ---------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_serve_mock_serves_until_sigterm(capsys: pytest.CaptureFixture[str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "llmfast", "serve-mock", "--port", "0", "--text", "pong",
        stdout=asyncio.subprocess.PIPE, env=child_env(),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        match = re.fullmatch(r"llmfast mock server listening on (http://\S+/v1)\n", line)
        assert match, line
        argv = ["chat", "--base-url", match.group(1), "--model", "m", "ping"]
        status, out, _ = await cli(argv, capsys)
        assert (status, out) == (0, "pong\n")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_import_llmfast_does_not_import_the_cli_or_the_batch_runner() -> None:
    code = (
        "import sys, llmfast\n"
        "print(sorted(m for m in sys.modules if m in {'llmfast.cli', 'llmfast.batch', 'tqdm'}))"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, env=child_env()
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert out == b"[]\n"


# --- retries and --rpm ----------------------------------------------------------------


async def test_failed_attempts_are_retried(
    server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.enqueue(Reply.error(503, retry_after=0), Reply.error(429, retry_after=0))
    status, out, _ = await cli(["chat", "--base-url", server.url, "--model", "m", "hi"], capsys)
    assert (status, out) == (0, "hi\n")
    assert server.request_count == 3
    server.enqueue(Reply.error(503, retry_after=0))
    argv = ["chat", "--base-url", server.url, "--model", "m", "--max-attempts", "1", "hi"]
    status, _, err = await cli(argv, capsys)
    assert (status, "ServerError: HTTP 503" in err) == (1, True)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_rpm_holds_requests_beyond_the_limit(server: MockServer, tmp_path: Path) -> None:
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, ["a", "b", "c"])
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "llmfast", "batch", str(source), "-o", str(output),
        "--base-url", server.url, "--model", "m", "--concurrency", "3", "--rpm", "2",
        env=child_env(),
    )  # fmt: skip
    try:
        await server.wait_for_requests(2, timeout=30)
        # The third waits for the next minute's budget (without --rpm it follows in ms).
        with pytest.raises(TimeoutError):
            await server.wait_for_requests(3, timeout=0.5)
    finally:
        proc.kill()
        await proc.wait()
    assert server.request_count == 2


async def test_the_client_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = _parser()
    url = "http://h/v1"
    args = parser.parse_args(["batch", "in", "-o", "out", "--base-url", url, "--rpm", "500"])
    assert repr(_client(args, rpm=args.rpm)) == (
        "<Client Retry(max_attempts=5) → RateLimit(rpm=500) → OpenAIBackend('http://h/v1')>"
    )
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    args = parser.parse_args(["chat", "--provider", "anthropic:claude-x", "--max-attempts", "2"])
    client = _client(args)
    assert client.model == "claude-x"
    assert "Retry(max_attempts=2) → AnthropicBackend" in repr(client)
