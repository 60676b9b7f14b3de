"""``llmfast batch``: stopping when every request fails, and the input file's edges
(a byte order mark, trailing blank lines, unknown roles, lines that are not JSON)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmfast.batch.lines import InputLineError, check_line, read_lines
from llmfast.testing import MockServer, Reply
from tests.test_batch_abort import closed_port
from tests.test_cli import (  # the autouse fixture keeps the environment's provider out
    _no_provider_in_the_environment,  # noqa: F401
    cli,
    records,
    write_lines,
)


async def test_a_rejected_key_stops_the_batch_with_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, [f"p{i}" for i in range(200)])
    async with MockServer(default=Reply.error(401, message="Incorrect API key")) as server:
        argv = ["batch", str(source), "-o", str(output), "--base-url", server.url, "--model", "m"]
        status, out, err = await cli(argv, capsys)
        assert server.request_count <= 16  # the default concurrency: what was in flight
    assert (status, out) == (1, "")
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith(
        "llmfast: batch stopped: the API key was rejected: AuthenticationError: "
        "HTTP 401: Incorrect API key (request id "
    )
    failed = len(records(output))
    assert 1 <= failed <= 16
    assert lines[1].startswith(f"llmfast: 0 of 200 done, {failed} failed -> {output}; ")
    assert f"run the same command to resume: llmfast {' '.join(argv)} " in lines[1]
    assert "Traceback" not in err


async def test_the_resume_command_never_shows_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, [f"p{i}" for i in range(20)])
    async with MockServer(default=Reply.error(401)) as server:
        url = server.url.replace("http://", "http://me:hunter2@") + "?api_key=sk-123&x=1"
        argv = ["batch", str(source), "-o", str(output), "--base-url", url, "--model", "m"]
        status, _, err = await cli(argv, capsys)
    assert status == 1
    assert "batch stopped" in err
    assert "hunter2" not in err
    assert "sk-123" not in err
    assert "--base-url 'http://***@127.0.0.1:" in err
    assert "?api_key=***&x=1'" in err


async def test_a_refused_connection_stops_within_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, [f"p{i}" for i in range(200)])
    url = f"http://127.0.0.1:{closed_port()}/v1"
    argv = ["batch", str(source), "-o", str(output), "--base-url", url, "--model", "m"]
    status, _, err = await cli([*argv, "--max-attempts", "2"], capsys)
    assert status == 1
    assert err.startswith("llmfast: batch stopped: the first 5 items all failed the same way: "
                          "ConnectError: ")  # fmt: skip
    assert 5 <= len(records(output)) <= 16


async def test_keep_going_records_every_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, [f"p{i}" for i in range(30)])
    async with MockServer(default=Reply.error(401)) as server:
        argv = ["batch", str(source), "-o", str(output), "--base-url", server.url, "--model", "m"]
        status, _, err = await cli([*argv, "--keep-going"], capsys)
        assert server.request_count == 30
    assert status == 1
    assert "0 of 30 done (0 resumed), 30 failed" in err
    assert len(records(output)) == 30


async def test_a_bom_and_trailing_blank_lines_are_fine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(b'\xef\xbb\xbf"first"\r\n{"prompt": "second"}\r\n\r\n\n  \n')
    async with MockServer() as server:
        argv = ["batch", str(source), "-o", str(output), "--base-url", server.url, "--model", "m"]
        status, _, err = await cli(argv, capsys)
    assert status == 0, err
    assert "2 of 2 done" in err
    assert sorted(r.json["messages"][0]["content"] for r in server.requests) == [
        "first",
        "second",
    ]


async def test_unknown_roles_and_non_json_lines_are_named_by_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(
        '"fine"\n'
        '[{"role": "usr", "content": "hi"}]\n'
        "Say hello\n"
        '{"messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]}\n'
        '"one" "two"\n'
        "\n"
    )
    async with MockServer() as server:
        argv = ["batch", str(source), "-o", str(output), "--base-url", server.url, "--model", "m"]
        status, _, err = await cli(argv, capsys)
        assert server.request_count == 0
    assert status == 2
    assert err.splitlines() == [
        f"llmfast: {source}: line 2: message 0 has an unknown role 'usr' "
        "(expected one of system, developer, user, assistant, tool)",
        f'llmfast: {source}: line 3: not JSON (write a prompt as a JSON string: "Say hello")',
        f"llmfast: {source}: line 4: message 1 has an unknown role 'bot' "
        "(expected one of system, developer, user, assistant, tool)",
        f"llmfast: {source}: line 5: not JSON (more than one value on the line)",
        f"llmfast: error: {source}: 4 malformed line(s); nothing was sent",
    ]
    assert "byte" not in err
    assert not output.exists()


def test_a_blank_line_in_the_middle_is_an_error_naming_it() -> None:
    with pytest.raises(InputLineError, match=r"^line 2: empty line"):
        check_line(2, b"\n", {"model": "m"})


@settings(max_examples=100, deadline=None)
@given(
    items=st.lists(st.text(min_size=1), min_size=1, max_size=8),
    bom=st.booleans(),
    newline=st.sampled_from([b"\n", b"\r\n"]),
    trailing=st.lists(st.sampled_from([b"\n", b"\r\n", b" \n", b"\t", b" "]), max_size=4),
)
def test_reading_lines_keeps_numbers_and_drops_only_the_edges(
    items: list[str], bom: bool, newline: bytes, trailing: list[bytes]
) -> None:
    body = b"".join(msgspec.json.encode(item) + newline for item in items)
    content = (b"\xef\xbb\xbf" if bom else b"") + body + b"".join(trailing)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "in.jsonl")
        with open(path, "wb") as file:
            file.write(content)
        got = [(n, check_line(n, line, {"model": "m"})) for n, line in read_lines(path)]
    assert got == list(enumerate(items, 1))
