"""A Jupyter kernel for the tests that execute notebooks, and readers of outputs.

:func:`notebook_kernel` writes a kernelspec to a temporary ``JUPYTER_PATH`` that
starts *this* interpreter (``sys.executable``), so a notebook runs in the
environment the tests run in, whatever kernels the machine has or lacks,
and puts this checkout first on ``PYTHONPATH`` so that the kernel imports
dmsnb from here, not from wherever it happens to be installed.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
KERNEL_NAME = "dmsnb-tests"


@contextmanager
def notebook_kernel(jupyter_path: Path) -> Iterator[str]:
    """Set up the tests' kernel under ``jupyter_path``; yields its name.

    The environment changes (``JUPYTER_PATH``, ``PYTHONPATH``, no
    ``MPLBACKEND``) last until the block ends.
    """
    spec_dir = jupyter_path / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "dmsnb tests",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))

    python_path = os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(jupyter_path))
        patch.setenv("PYTHONPATH", python_path)
        # A headless kernel draws with the inline backend, whatever the user set.
        patch.delenv("MPLBACKEND", raising=False)
        yield KERNEL_NAME


def outputs(notebook: nbformat.NotebookNode) -> list[dict[str, Any]]:
    """Every output of every code cell, in order."""
    return [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    ]


def output_text(notebook: nbformat.NotebookNode) -> str:
    """The text a reader sees: streams, errors and the text/plain of results."""
    parts = []
    for output in outputs(notebook):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif output["output_type"] == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
        elif "data" in output:
            parts.append(str(output["data"].get("text/plain", "")))
    return "\n".join(parts)


def errors(notebook: nbformat.NotebookNode) -> list[dict[str, Any]]:
    """The error outputs, as ``{"ename", "evalue", "traceback"}``."""
    return [o for o in outputs(notebook) if o["output_type"] == "error"]


def cell_text(notebook: nbformat.NotebookNode, cell_id: str) -> str:
    """The text shown by the outputs of the cell with id ``cell_id``."""
    cell = next(c for c in notebook.cells if c.get("id") == cell_id)
    single = nbformat.v4.new_notebook(cells=[cell])
    return output_text(single)
