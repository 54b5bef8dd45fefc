"""A Binder build opens the quickstart on the simulator.

The test does what a Binder build does, from nothing but the ``binder/``
files: a fresh virtual environment, ``pip install -r
binder/requirements.txt``, then ``binder/postBuild`` in the repository root
(a copy of it, so the checkout is left alone). That environment's own
Python then executes the quickstart, on the ``python3`` kernel the
environment provides, from a folder outside the repository, so that dmsnb
can only come from what ``postBuild`` installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from .notebook_kernel import REPO, errors, output_text

pytestmark = pytest.mark.binder

BINDER = REPO / "binder"
EXECUTORS = {"nbclient", "nbformat", "papermill"}
"""The notebook extra's tools that only execute notebooks headless."""

RUN_QUICKSTART = """
import sys

import nbformat
from nbclient import NotebookClient

source, folder, output = sys.argv[1:]
notebook = nbformat.read(source, as_version=4)
probe = (
    "import sys, dmsnb; print('python', sys.executable); print('dmsnb', dmsnb.__file__)"
)
notebook.cells.insert(0, nbformat.v4.new_code_cell(probe))
where = {"metadata": {"path": folder}}
client = NotebookClient(notebook, kernel_name="python3", timeout=180, resources=where)
client.execute()
nbformat.write(notebook, output)
"""


def requirement_names(lines: list[str]) -> dict[str, str]:
    """``{name: the whole requirement}``, names normalised."""
    found = {}
    for line in lines:
        requirement = line.split("#", 1)[0].strip()
        if requirement:
            name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]
            found[name.lower().replace("_", "-")] = requirement.replace(" ", "")
    return found


def test_the_binder_requirements_follow_pyproject() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11 and later
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = requirement_names(
        [*project["dependencies"], *project["optional-dependencies"]["notebook"]]
    )
    for name in EXECUTORS:
        wanted.pop(name, None)
    listed = requirement_names((BINDER / "requirements.txt").read_text().splitlines())
    runtime = (BINDER / "runtime.txt").read_text().strip()

    assert listed == wanted
    assert re.fullmatch(r"python-3\.\d+", runtime)
    supported = project["requires-python"].removeprefix(">=")
    assert tuple(map(int, runtime[7:].split("."))) >= tuple(
        map(int, supported.split("."))
    )
    assert os.access(BINDER / "postBuild", os.X_OK)


def binder_environment(venv: Path) -> dict[str, str]:
    """The variables of a shell in the fresh environment, and nothing of ours."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PYTHON", "JUPYTER", "VIRTUAL_ENV", "PIP_", "MPL"))
    }
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    env["VIRTUAL_ENV"] = str(venv)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["JUPYTER_DATA_DIR"] = str(venv.parent / "jupyter-data")
    env["JUPYTER_CONFIG_DIR"] = str(venv.parent / "jupyter-config")
    return env


def copy_of_the_repository(target: Path) -> Path:
    skipped = shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*_cache"
    )
    shutil.copytree(REPO, target, ignore=skipped)
    return target


def test_a_fresh_environment_from_binder_runs_the_quickstart(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    repo = copy_of_the_repository(tmp_path / "repo")
    env = binder_environment(venv)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)

    def step(*args: str, cwd: Path = tmp_path) -> None:
        done = subprocess.run(
            args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"

    step(
        str(python),
        "-m",
        "pip",
        "install",
        "-q",
        "-r",
        "binder/requirements.txt",
        cwd=repo,
    )
    step("bash", "binder/postBuild", cwd=repo)
    overrides = venv / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    saved = json.loads(overrides.read_text())
    assert saved["@jupyter-widgets/jupyterlab-manager:plugin"]["saveState"] is True
    folder = tmp_path / "binder-home"
    folder.mkdir()
    shutil.copy(repo / "notebooks" / "quickstart.ipynb", folder)
    output = tmp_path / "quickstart.out.ipynb"
    step(
        str(python),
        "-c",
        RUN_QUICKSTART,
        str(folder / "quickstart.ipynb"),
        str(folder),
        str(output),
    )

    executed = nbformat.read(output, as_version=4)
    text = output_text(executed)
    assert errors(executed) == []
    assert f"python {python}" in text
    site = re.search(r"^dmsnb (.+)$", text, re.MULTILINE)
    assert site is not None and site.group(1).startswith(str(venv))
    assert "<dmsnb.Client SIMULATOR endpoint=http://127.0.0.1:" in text
    assert "restart: 3 instance(s), 3 success" in text
    assert "<dmsnb.Panel SIMULATOR" in text
