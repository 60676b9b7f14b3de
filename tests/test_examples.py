"""Every example runs as written, against llmfast's built-in local server, with nothing
on stderr even under ``-W error::ResourceWarning`` (no unclosed file or socket)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "examples"
PROVIDER_VARIABLES = ("LLMFAST_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY", "LLMFAST_MODEL")


async def run_example(name: str, tmp_path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    env["TMPDIR"] = str(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error::ResourceWarning",  # an unclosed file or socket prints to stderr
        str(EXAMPLES / name),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert err == b"", err.decode()
    text = out.decode()
    assert (
        "No provider configured: using llmfast's built-in local server at http://127.0.0.1:" in text
    )
    return text


async def test_sync_script(tmp_path: Path) -> None:
    out = await run_example("sync_script.py", tmp_path)
    assert "chat   -> 'Say hello to llmfast in five words.'" in out
    assert "stream -> Count from one to five, please.  [finish_reason=stop]" in out
    assert "embed  -> 2 vectors of 8 floats" in out
    assert "threads-> 16 calls from 8 threads, first: 'Echo 0'" in out
    assert "map    -> 50 results in input order, 0 failed" in out


async def test_batch_example(tmp_path: Path) -> None:
    out = await run_example("batch.py", tmp_path)
    match = re.search(r"pass 1 -> interrupted: (\d+) finished", out)
    assert match, out
    finished = int(match.group(1))
    assert 120 <= finished < 300
    assert f"pass 2 -> 300 results: {finished} resumed from the checkpoint, " in out
    assert f"{300 - finished} sent now, 0 failed" in out
    assert "result -> #0 resumed=True: 'Write a haiku about the number 0.'" in out
    assert "file   -> 300 lines, one per finished request" in out


async def test_notebook_runs_as_a_script(tmp_path: Path) -> None:
    left: list[Path] = []
    out = await run_example("notebook.py", tmp_path)
    left.extend(tmp_path.iterdir())  # noqa: ASYNC240 - the child has exited
    assert "Give me a one-line fun fact about octopuses." in out
    assert "finish reason: stop" in out
    assert "200 of 200 succeeded" in out
    assert "200 of 200 resumed from the checkpoint" in out
    assert "0 failed" in out
    assert "closed: True" in out
    assert left == []  # the checkpoint was removed


@pytest.mark.parametrize("name", ["sync_script.py", "batch.py", "notebook.py"])
def test_examples_say_how_to_run_them(name: str) -> None:
    assert f"examples/{name}" in (EXAMPLES / name).read_text()


async def test_quickstart(tmp_path: Path) -> None:
    out = await run_example("quickstart.py", tmp_path)
    assert "chat   -> 'Say hello to llmfast in five words.'" in out
    assert "stream -> Count from one to five, please.  [finish_reason=stop]" in out
    assert "embed  -> 2 vectors of 8 floats" in out


async def test_structured_example(tmp_path: Path) -> None:
    out = await run_example("structured_output.py", tmp_path)
    assert re.search(r"output -> Invoice with \d+ line\(s\), attempts=1", out), out
    assert re.search(r"stream -> \d+ partial\(s\), then Invoice", out), out
    assert "tools  -> 'Two teas cost 5 euros.' after 2 model calls" in out
