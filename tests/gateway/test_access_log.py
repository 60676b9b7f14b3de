"""The access log: one JSON line per request, buffered, written in whole-line pieces
a pipe takes atomically, to stderr, a stream or a file; never the keys."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from pathlib import Path

import aiohttp
import pytest

from llmfast.gateway import Gateway, GatewayConfigError, parse_config
from llmfast.gateway.access_log import PIPE_BUF, AccessLog, stderr_bytes
from llmfast.testing import MockServer

from .conftest import TEAM_A_KEY, UPSTREAM_KEY, standard_config


class Recorder(io.BytesIO):
    """A stream that keeps each write apart and says when it was flushed."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.flushed = asyncio.Event()

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writes.append(bytes(data))
        return super().write(data)

    def flush(self) -> None:
        self.flushed.set()


async def _calls(url: str) -> None:
    body = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {TEAM_A_KEY}"}
        async with session.post(f"{url}/v1/chat/completions", json=body, headers=headers) as r:
            assert r.status == 200
        async with session.post(
            f"{url}/v1/chat/completions", json={**body, "stream": True}, headers=headers
        ) as r:
            assert r.status == 200
            await r.read()
        bad = {"Authorization": "Bearer vk-wrong"}
        async with session.post(f"{url}/v1/chat/completions", json=body, headers=bad) as r:
            assert r.status == 401


def _lines(data: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in data.splitlines()]


async def test_one_line_per_request_written_at_stop(upstream: MockServer) -> None:
    stream = Recorder()
    config = parse_config(standard_config(upstream))
    async with Gateway(config, access_log=stream) as gateway:
        await _calls(gateway.url)
    logged = _lines(stream.getvalue())
    assert [(e["method"], e["path"], e["status"], e["tenant"]) for e in logged] == [
        ("POST", "/v1/chat/completions", 200, "team-a"),
        ("POST", "/v1/chat/completions", 200, "team-a"),
        ("POST", "/v1/chat/completions", 401, None),
    ]
    assert all(isinstance(e["ms"], float) and e["ms"] >= 0 for e in logged)
    assert all(isinstance(e["time"], float) for e in logged)
    text = stream.getvalue().decode()
    assert UPSTREAM_KEY not in text
    assert TEAM_A_KEY not in text
    assert len(stream.writes) == 1  # three lines, one write


async def test_lines_go_out_soon_without_a_stop(upstream: MockServer) -> None:
    stream = Recorder()
    config = parse_config(standard_config(upstream))
    async with Gateway(config, access_log=stream) as gateway:
        await _calls(gateway.url)
        await asyncio.wait_for(stream.flushed.wait(), timeout=5)  # the flush timer's
        assert len(_lines(stream.getvalue())) == 3


async def test_a_file_path_is_appended_to(upstream: MockServer, tmp_path: Path) -> None:
    path = tmp_path / "access.jsonl"
    path.write_bytes(b'{"earlier":true}\n')
    extra_server = f'access_log = "{path}"\n'
    text = standard_config(upstream).replace("grace = 5\n", "grace = 5\n" + extra_server)
    async with Gateway(parse_config(text)) as gateway:
        await _calls(gateway.url)
    logged = _lines(path.read_bytes())
    assert logged[0] == {"earlier": True}
    assert [e["status"] for e in logged[1:]] == [200, 200, 401]


async def test_off_writes_nothing(upstream: MockServer) -> None:
    stream = Recorder()
    text = standard_config(upstream).replace("grace = 5\n", "grace = 5\naccess_log = false\n")
    async with Gateway(parse_config(text), access_log=stream) as gateway:
        await _calls(gateway.url)
    assert stream.getvalue() == b""


def test_an_empty_path_is_refused(upstream: MockServer) -> None:
    text = standard_config(upstream).replace("grace = 5\n", 'grace = 5\naccess_log = ""\n')
    with pytest.raises(GatewayConfigError, match="access_log"):
        parse_config(text)


async def test_writes_are_whole_lines_a_pipe_takes_at_once() -> None:
    stream = Recorder()
    log = AccessLog(stream)
    lines = [json.dumps({"n": i, "pad": "x" * (i % 150)}).encode() for i in range(400)]
    for line in lines:
        log.add(line)
    log.flush()
    assert len(stream.writes) > 1
    for piece in stream.writes:
        assert len(piece) <= PIPE_BUF
        assert piece.endswith(b"\n")
    assert b"".join(stream.writes) == b"".join(line + b"\n" for line in lines)


async def test_a_full_buffer_is_written_at_once() -> None:
    stream = Recorder()
    log = AccessLog(stream, flush_after=3600, max_buffered=1000)
    for _ in range(9):
        log.add(b"x" * 99)  # 900 bytes with the line ends: waits for the timer
    assert stream.writes == []
    log.add(b"y" * 99)
    assert b"".join(stream.writes).count(b"\n") == 10
    log.flush()  # nothing left: no write
    assert b"".join(stream.writes).count(b"\n") == 10


async def test_a_failing_stream_loses_lines_not_the_gateway(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(Recorder):
        fail = True

        def write(self, data: bytes) -> int:  # type: ignore[override]
            if self.fail:
                raise BrokenPipeError("the reader went away")
            return super().write(data)

    stream = Broken()
    log = AccessLog(stream)
    log.add(b'{"a":1}')
    with caplog.at_level(logging.WARNING, logger="llmfast.gateway"):
        log.flush()
    assert "lost 1 lines" in caplog.text
    stream.fail = False
    log.add(b'{"b":2}')
    log.flush()
    assert stream.getvalue() == b'{"b":2}\n'


async def test_a_text_only_stderr_gets_the_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    text = io.StringIO()  # like a notebook's stderr: no binary buffer under it
    monkeypatch.setattr("sys.stderr", text)
    log = AccessLog(stderr_bytes())
    log.add(b'{"a":1}')
    log.flush()
    assert text.getvalue() == '{"a":1}\n'
