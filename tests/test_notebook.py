"""A real Jupyter kernel (nbclient + ipykernel) runs llmfast the way a notebook user does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

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


def run_notebook(cells: list[str], tmp_path: Path) -> list[dict[str, Any]]:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    client = nbclient.NotebookClient(
        notebook, timeout=60, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute()
    return [output for cell in notebook.cells for output in cell.outputs]


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
