"""The panel in a real browser: JupyterLab and Notebook 7 in headless Chromium.

A Jupyter server on 127.0.0.1 serves a copy of ``notebooks/panel.ipynb``;
Playwright drives the distribution's Chromium (never a browser it would
download). The tests run whenever Chromium and Playwright are present and
skip with the reason when they are not, unless ``DMSNB_REQUIRE_BROWSER=1``
(set by ``.ci/run``), which turns the skip into a failure. Screenshots of
the panel go to ``artifacts/``.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "artifacts"
PATIENCE = 90.0
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def browser_or_skip() -> str:
    """Chromium's path; skips (or fails, when it is required) without it."""
    problems = []
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        problems.append("no chromium on PATH (Debian: apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the playwright package is missing (pip install playwright)")
    if problems:
        reason = "; ".join(problems)
        if os.environ.get("DMSNB_REQUIRE_BROWSER") == "1":
            pytest.fail(f"DMSNB_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    assert found is not None
    return found


@dataclass(frozen=True)
class Server:
    base: str
    token: str

    def url(self, path: str) -> str:
        return f"{self.base}/{path}?token={self.token}"


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def chromium() -> str:
    return browser_or_skip()


@pytest.fixture(scope="module")
def jupyter(
    chromium: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """JupyterLab (with Notebook 7 beside it) on 127.0.0.1, on a copy of
    the panel notebook, with settings and workspaces of its own."""
    root = tmp_path_factory.mktemp("lab")
    home = tmp_path_factory.mktemp("home")
    shutil.copy(REPO / "notebooks" / "panel.ipynb", root / "panel.ipynb")
    shutil.copy(REPO / "notebooks" / "panel.ipynb", root / "panel-nb7.ipynb")
    # No news toast over the panel, and nothing fetched from outside.
    notification = home / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}'
    )
    # "Save Widget State Automatically" (Settings menu): the saved notebook
    # then carries the widgets' state, and reopens without its kernel.
    manager = home / "settings" / "@jupyter-widgets" / "jupyterlab-manager"
    manager.mkdir(parents=True)
    (manager / "plugin.jupyterlab-settings").write_text('{"saveState": true}')
    port = free_port()
    token = uuid.uuid4().hex
    python_path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = {
        **os.environ,
        "PYTHONPATH": python_path,
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
    }
    log_path = home / "server.log"
    with log_path.open("w") as log:
        lab = subprocess.Popen(
            [
                *(sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root"),
                *("--ip=127.0.0.1", f"--port={port}", f"--ServerApp.root_dir={root}"),
                f"--IdentityProvider.token={token}",
                "--LabApp.expose_app_in_browser=True",
                "--JupyterNotebookApp.expose_app_in_browser=True",
                f"--LabApp.user_settings_dir={home / 'settings'}",
                f"--LabApp.workspaces_dir={home / 'workspaces'}",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            server = Server(f"http://127.0.0.1:{port}", token)
            deadline = time.monotonic() + 60
            while not answers(server.url("api/status")):
                assert lab.poll() is None, (
                    "Jupyter stopped while starting: " + (log_path.read_text()[-2000:])
                )
                assert time.monotonic() < deadline, "Jupyter did not start in 60 s"
                time.sleep(0.3)
            yield server
        finally:
            lab.terminate()
            lab.wait(timeout=30)


@pytest.fixture
def page(chromium: str, tmp_path: Path) -> Iterator[Any]:
    """A page of a fresh headless Chromium (a profile of its own)."""
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=chromium,
            headless=True,
            args=list(CHROMIUM_FLAGS),
            # Tall enough for the whole panel, so that its screenshots need
            # no scrolling inside the notebook.
            viewport={"width": 1300, "height": 2400},
        )
        try:
            opened = context.new_page()
            opened.set_default_timeout(PATIENCE * 1000)
            yield opened
        finally:
            context.close()


def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.2)


def run_all_cells(page: Any) -> None:
    """Open the notebook's kernel and run every cell, as the Run menu does."""
    page.wait_for_function("window.jupyterapp !== undefined")
    page.wait_for_selector(".jp-Notebook")
    eventually(
        lambda: bool(
            page.evaluate(
                "() => { const w = window.jupyterapp.shell.currentWidget;"
                " return !!(w && w.sessionContext && w.sessionContext.session"
                " && w.sessionContext.session.kernel); }"
            )
        ),
        "the notebook's kernel to start",
    )
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")


def hide_the_sidebar(page: Any) -> None:
    """More room for the panel: JupyterLab's file browser goes."""
    page.evaluate(
        "() => window.jupyterapp.commands.execute('application:toggle-left-area')"
    )


def widget_errors(page: Any) -> list[str]:
    """The outputs that show a widget error instead of the widget."""
    shown = page.locator(".jp-OutputArea-output", has_text="Error displaying widget")
    return [str(text) for text in shown.all_inner_texts()]


def panel_tables(page: Any) -> tuple[Any, Any]:
    """The fleet table and the results table of the panel on the page."""
    panel = page.locator(".dmsnb-panel").first
    tables = panel.locator(".itables_anywidget")
    return tables.nth(0), tables.nth(1)


def cells(row: Any) -> list[str]:
    return [str(text) for text in row.locator("td").all_inner_texts()]


@pytest.mark.browser
def test_two_rows_clicked_in_jupyterlab_are_restarted_and_shown_as_success(
    jupyter: Server, page: Any
) -> None:
    page.goto(jupyter.url("lab/tree/panel.ipynb"))
    run_all_cells(page)
    hide_the_sidebar(page)
    panel = page.locator(".dmsnb-panel").first
    fleet, results = panel_tables(page)
    rows = fleet.locator("tbody tr")
    rows.first.wait_for()
    assert "SIMULATOR" in panel.inner_text()

    # Sort by name first: the selection is by id, whatever the order shown.
    # (itables lets the header text be selected: the sort icon sorts.)
    name_header = fleet.locator("th", has_text=re.compile(r"^name$")).first
    name_header.locator(".dt-column-order").click()
    eventually(
        lambda: cells(rows.nth(0))[1] <= cells(rows.nth(1))[1],
        "the table to be sorted by name",
    )
    running = [n for n in range(rows.count()) if cells(rows.nth(n))[2] == "RUNNING"][:2]
    picked = [cells(rows.nth(n))[0] for n in running]
    for n in running:
        rows.nth(n).click()

    plan = panel.locator(".widget-html-content", has_text="Plan:").first
    eventually(
        lambda: (
            "Plan: restart: 2 instance(s) to act on, 0 skipped" in plan.inner_text()
            and all(i in plan.inner_text() for i in picked)
        ),
        f"the plan to list {picked}",
    )
    ARTIFACTS.mkdir(exist_ok=True)
    panel.screenshot(path=str(ARTIFACTS / "panel-before.png"))

    panel.locator("button", has_text="Run: restart 2").click()

    def shown_with_success() -> bool:
        shown = {cells(row)[0]: cells(row) for row in results.locator("tbody tr").all()}
        return all(i in shown and shown[i][2] == "success" for i in picked)

    eventually(shown_with_success, f"the merged table to show {picked} as success")
    eventually(
        lambda: "restart: 2 instance(s), 2 success" in panel.inner_text(),
        "the one-line summary",
    )
    assert widget_errors(page) == []
    panel.screenshot(path=str(ARTIFACTS / "panel-after.png"))

    # Save, restart the kernel, reopen: the saved output still reads.
    save_and_restart_the_kernel(page)
    page.reload()
    page.wait_for_selector(".jp-Notebook")
    reopened = page.locator(".dmsnb-panel").first
    _, results = panel_tables(page)
    eventually(shown_with_success, "the reopened notebook to show the results")
    assert "SIMULATOR" in reopened.inner_text()
    assert widget_errors(page) == []
    reopened.screenshot(path=str(ARTIFACTS / "panel-reopened.png"))


def save_and_restart_the_kernel(page: Any) -> None:
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    eventually(
        lambda: bool(
            page.evaluate(
                "() => !window.jupyterapp.shell.currentWidget.context.model.dirty"
            )
        ),
        "the notebook to be saved",
    )
    page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.restartKernel()"
    )
    eventually(
        lambda: bool(
            page.evaluate(
                "() => window.jupyterapp.shell.currentWidget.sessionContext"
                ".session.kernel.status === 'idle'"
            )
        ),
        "the kernel to be back",
    )


@pytest.mark.browser
def test_the_panel_works_in_notebook_7(jupyter: Server, page: Any) -> None:
    # TODO: the notebook extra does not list Notebook 7 yet; until it does,
    # a machine without it skips this test with the install command.
    pytest.importorskip("notebook", reason="Notebook 7 missing: pip install notebook")
    page.goto(jupyter.url("notebooks/panel-nb7.ipynb"))
    run_all_cells(page)
    panel = page.locator(".dmsnb-panel").first
    fleet, _ = panel_tables(page)
    rows = fleet.locator("tbody tr")
    rows.first.wait_for()

    status = [cells(rows.nth(n))[2] for n in range(rows.count())]
    row = status.index("RUNNING")
    picked = cells(rows.nth(row))[0]
    rows.nth(row).click()
    plan = panel.locator(".widget-html-content", has_text="Plan:").first
    eventually(lambda: picked in plan.inner_text(), "the plan to list the row")

    assert "SIMULATOR" in panel.inner_text()
    assert "1 selected" in panel.inner_text()
    assert widget_errors(page) == []
    ARTIFACTS.mkdir(exist_ok=True)
    panel.screenshot(path=str(ARTIFACTS / "panel-notebook7.png"))
