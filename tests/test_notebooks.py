"""The notebooks run top to bottom, headless, and show what they promise.

Each notebook is executed once per test session on a kernel of its own: a
kernelspec written to a temporary ``JUPYTER_PATH`` that starts *this*
interpreter (``sys.executable``), so the notebook runs in the environment
the tests run in, whatever kernels the machine has or lacks. The kernel
imports dmsnb from this checkout (``PYTHONPATH``), not from wherever it
happens to be installed. The executed copy is written to a temporary
folder; the notebook in the repository is never rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from dmsnb.simulator import derived_keys

from .notebook_kernel import NOTEBOOKS, notebook_kernel, output_text, outputs

pytestmark = pytest.mark.notebook

CELL_TIMEOUT = 120


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with notebook_kernel(tmp_path_factory.mktemp("jupyter")) as name:
        yield name


def execute(name: str, kernel_name: str, out_dir: Path) -> nbformat.NotebookNode:
    source = NOTEBOOKS / name
    notebook = nbformat.read(source, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name=kernel_name,
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(out_dir)}},
    )
    client.execute()
    nbformat.write(notebook, out_dir / name)
    return notebook


@pytest.fixture(scope="module")
def quickstart(
    kernel_name: str, tmp_path_factory: pytest.TempPathFactory
) -> nbformat.NotebookNode:
    return execute("quickstart.ipynb", kernel_name, tmp_path_factory.mktemp("run"))


def simulator_seed(notebook: nbformat.NotebookNode) -> int:
    sources = "\n".join(cell.source for cell in notebook.cells)
    match = re.search(r"Simulator\([^)]*seed=(\d+)", sources, re.DOTALL)
    assert match, "the notebook no longer starts a Simulator with a seed"
    return int(match.group(1))


def test_the_committed_quickstart_has_no_outputs(
    quickstart: nbformat.NotebookNode,
) -> None:
    # Asked for after the run too: executing must not write over the source.
    notebook = nbformat.read(NOTEBOOKS / "quickstart.ipynb", as_version=4)
    nbformat.validate(notebook)

    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == []
            assert cell.execution_count is None


def test_the_quickstart_runs_without_errors(
    quickstart: nbformat.NotebookNode,
) -> None:
    errors = [o for o in outputs(quickstart) if o["output_type"] == "error"]
    assert errors == []
    stderr = [
        o["text"]
        for o in outputs(quickstart)
        if o["output_type"] == "stream" and o["name"] == "stderr"
    ]
    assert stderr == []


def test_the_quickstart_shows_what_each_step_promises(
    quickstart: nbformat.NotebookNode,
) -> None:
    text = output_text(quickstart)

    assert "<dmsnb.Client SIMULATOR endpoint=http://127.0.0.1:" in text
    assert "restart: 3 instance(s), 3 success" in text
    check = next(c for c in quickstart.cells if c.source.startswith("now = "))
    listed = check.outputs[0]["data"]["text/plain"].splitlines()[1:]
    assert len(listed) == 3
    assert all(line.rstrip().endswith("RUNNING") for line in listed)
    assert "refused before sending: confirm=2 does not match" in text
    assert "delete: 1 instance(s), 1 success" in text
    assert re.search(r"delete_failed: 1 instance\(s\), 1 success", text)
    assert "<dmsnb.Panel SIMULATOR" in text

    widget_views = [
        o
        for o in outputs(quickstart)
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert len(widget_views) == 1
    pictures = [o for o in outputs(quickstart) if "image/png" in o.get("data", {})]
    assert len(pictures) == 1


def test_the_quickstart_selects_two_rows_in_the_panel(
    quickstart: nbformat.NotebookNode,
) -> None:
    cell = next(c for c in quickstart.cells if "panel.select(" in c.source)
    shown = cell.outputs[0]["data"]["text/plain"]

    ids = re.findall(r"'([0-9a-f-]{36})'", shown)
    assert len(ids) == 2


def test_no_secret_appears_in_the_executed_quickstart(
    quickstart: nbformat.NotebookNode,
) -> None:
    keys = derived_keys(simulator_seed(quickstart))
    # Everything: outputs, and the widget state stored in the metadata.
    everything = nbformat.writes(quickstart)

    assert "application/vnd.jupyter.widget-state+json" in everything
    assert keys.sk not in everything
    assert keys.ak not in everything
    assert re.search(r"Signature=[0-9a-f]{16}", everything) is None
    for header in ("SDK-HMAC-SHA256", "X-Auth-Token", "X-Security-Token"):
        assert header not in everything
