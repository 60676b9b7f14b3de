"""A real Jupyter kernel (nbclient + ipykernel) runs llmfast the way a notebook user does."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
if importlib.util.find_spec("ipykernel") is None:  # not imported: it would look like a kernel
    pytest.skip("ipykernel is not installed", allow_module_level=True)

REPO_ROOT = Path(__file__).resolve().parent.parent

SETUP = f"""\
import sys
sys.path.insert(0, {str(REPO_ROOT)!r})
import gc
import llmfast
from llmfast.testing import MockServer
server = MockServer()
await server.start()
"""

# Re-running this cell drops the previous client without aclose().
CLIENT_CELL = """\
client = llmfast.Client(base_url=server.url, model="m")
print((await client.chat("hello notebook")).text)
"""

BATCH_CELL = """\
results = await client.map(["a", "b", "c"], progress=True)
print(len(results), "results")
"""


RUNNER = """\
import sys, nbclient, nbformat
notebook = nbformat.read(sys.argv[1], as_version=4)
nbclient.NotebookClient(notebook, timeout=60, kernel_name="python3").execute()
nbformat.write(notebook, sys.argv[1])
"""


def run_notebook(cells: list[str], tmp_path: Path) -> list[dict[str, Any]]:
    """Execute the cells in a real kernel; nbclient runs in a child process, since it
    imports ipykernel (which makes llmfast believe this process is a notebook)."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    path = tmp_path / "test.ipynb"
    nbformat.write(notebook, path)
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    executed = nbformat.read(path, as_version=4)
    return [output for cell in executed.cells for output in cell.outputs]


def output_text(outputs: list[dict[str, Any]]) -> str:
    return json.dumps(outputs)


def test_re_running_a_cell_that_makes_a_client_prints_no_warning(tmp_path: Path) -> None:
    cells = [SETUP, CLIENT_CELL, CLIENT_CELL, CLIENT_CELL, "gc.collect()\nprint('collected')"]
    outputs = run_notebook(cells, tmp_path)
    text = output_text(outputs)
    assert text.count("hello notebook") == 3, text
    assert "collected" in text
    assert "Unclosed" not in text
    assert [o for o in outputs if o.get("name") == "stderr" or o["output_type"] == "error"] == []


def test_a_progress_bar_without_ipywidgets_falls_back_to_text_quietly(tmp_path: Path) -> None:
    cells = [SETUP, CLIENT_CELL, BATCH_CELL, "await client.aclose()\nawait server.close()"]
    outputs = run_notebook(cells, tmp_path)
    text = output_text(outputs)
    assert "3 results" in text
    assert "IProgress" not in text
    assert "TqdmWarning" not in text
