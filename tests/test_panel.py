"""The panel, headless: selection as the browser sets it, buttons clicked by code."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import ipywidgets as widgets
import nbformat
import pandas as pd
import pytest

import dmsnb
from dmsnb import Panel
from dmsnb._panel import GRID_COLUMNS, hint_for
from dmsnb.simulator import Call, Reply, Serve, Simulator, Timings

from .conftest import PROJECT_ID

MockFactory = Callable[..., tuple[dmsnb.Client, list[httpx.Request]]]

FAST = Timings(restart_seconds=0.2, delete_seconds=0.2, list_hides_deleting_after=0)
QUICK = dmsnb.RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)
FOLLOW = dmsnb.Tracking(timeout=10, settle_seconds=1, interval=0.05, max_interval=0.1)
WAIT = 30.0


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(
        instances=30, seed=11, timings=FAST, failed_creations=2, errors=1
    )
    with simulator:
        yield simulator


@pytest.fixture
def client(sim: Simulator, tmp_path: Path) -> Iterator[dmsnb.Client]:
    with sim.client(retry=QUICK, audit=tmp_path / "panel.audit.jsonl") as made:
        yield made


@pytest.fixture
def panel(client: dmsnb.Client) -> Panel:
    return Panel(client, tracking=FOLLOW)


@contextmanager
def simulated(
    tmp_path: Path, instances: int, **options: Any
) -> Iterator[tuple[Simulator, dmsnb.Client]]:
    """A simulator of its own, and a client for it."""
    options.setdefault("timings", FAST)
    with (
        Simulator(instances=instances, seed=5, errors=0, **options) as sim,
        sim.client(retry=QUICK, audit=tmp_path / "big.audit.jsonl") as client,
    ):
        yield sim, client


def running_positions(panel: Panel, count: int) -> list[int]:
    fleet = panel.fleet
    return [int(n) for n in fleet.index[fleet["status"] == "RUNNING"][:count]]


def ids_at(panel: Panel, positions: list[int]) -> list[str]:
    return [str(panel.fleet["instance_id"][n]) for n in positions]


def acted_on(sim: Simulator) -> list[tuple[str, str]]:
    return [(record.action, record.instance_id) for record in sim.action_log]


def table_rows(table: Any) -> list[list[Any]]:
    rows: list[list[Any]] = json.loads(table._dt_args["data_json"])
    return rows


def records(count: int, *, seed: int = 1) -> list[dict[str, Any]]:
    return [
        {
            "instance_id": str(uuid.UUID(int=seed * 100_000 + n, version=4)),
            "name": f"kafka-{n:04d}",
            "status": "RUNNING",
            "engine_version": "3.x",
            "specification": "100MB",
            "created_at": str(1_700_000_000_000 + n),
            "tags": [{"key": "env", "value": "stg"}],
        }
        for n in range(count)
    ]


def serving(fleet: list[dict[str, Any]]) -> Callable[[httpx.Request], httpx.Response]:
    """A list endpoint over ``fleet``, which the test may change between calls."""

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params.get("offset", "0"))
        limit = int(request.url.params.get("limit", "10"))
        page = fleet[offset : offset + limit]
        return httpx.Response(200, json={"instances": page, "instance_num": len(fleet)})

    return handler


# -- what the panel shows ----------------------------------------------------


def test_the_banner_says_simulator_and_the_header_names_endpoint_and_project(
    panel: Panel, sim: Simulator
) -> None:
    assert "SIMULATOR" in panel.banner.value
    assert "nothing here touches a real cloud" in panel.banner.value
    assert sim.base_url in panel.header.value
    assert sim.project_id in panel.header.value
    assert repr(panel).startswith("<dmsnb.Panel SIMULATOR")


def test_a_real_endpoint_gets_a_real_cloud_banner(mock_client: MockFactory) -> None:
    client, _ = mock_client(serving(records(2)))

    panel = Panel(client)

    assert "REAL CLOUD" in panel.banner.value
    assert "SIMULATOR" not in panel.banner.value
    assert "dms.eu-de.otc.t-systems.com" in panel.header.value


def test_the_panel_displays_as_one_widget_with_a_short_text_form(
    panel: Panel,
) -> None:
    bundle = panel._repr_mimebundle_()

    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == panel.widget.model_id
    assert bundle["text/plain"] == repr(panel)
    assert "30 instance(s), 0 selected" in repr(panel)


def test_the_table_shows_the_useful_columns_as_text(panel: Panel) -> None:
    shown = panel.table.df

    assert tuple(shown.columns) == GRID_COLUMNS
    assert len(shown) == len(panel.fleet) == 30
    assert shown["created_at"].str.endswith(" UTC").all()
    tagged = shown["tags"][shown["tags"] != ""]
    assert tagged.str.contains("env=").all()
    assert "30 instance(s) listed" in panel.fleet_info.value
    assert "2 whose creation failed" in panel.fleet_info.value


def test_a_large_fleet_is_sent_whole_so_every_row_can_be_selected(
    mock_client: MockFactory,
) -> None:
    fleet = records(2_000)
    client, _ = mock_client(serving(fleet))

    panel = Panel(client)
    panel.table.selected_rows = [0, 1_000, 1_999]

    assert len(table_rows(panel.table)) == 2_000
    assert "downsampling_warning" not in panel.table._dt_args
    assert panel.selected_ids == [fleet[n]["instance_id"] for n in (0, 1_000, 1_999)]


def test_names_from_the_service_are_escaped_in_the_table(
    mock_client: MockFactory,
) -> None:
    fleet = records(1)
    fleet[0]["name"] = "<img src=x onerror=alert(1)>"
    client, _ = mock_client(serving(fleet))

    panel = Panel(client)

    assert "<img" not in panel.table._dt_args["data_json"]
    assert "&lt;img" in panel.table._dt_args["data_json"]


# -- selection ---------------------------------------------------------------


def test_rows_clicked_in_the_browser_become_instance_ids(panel: Panel) -> None:
    panel.table.selected_rows = [4, 0, 7]

    assert panel.selected_ids == ids_at(panel, [0, 4, 7])
    assert "Plan: restart: 3 instance(s) to act on" in panel.plan_area.value


def test_select_by_code_takes_ids_frames_and_masks_and_ticks_the_rows(
    panel: Panel,
) -> None:
    fleet = panel.fleet

    panel.select(ids_at(panel, [2, 5]))
    assert panel.table.selected_rows == [2, 5]

    panel.select(fleet.iloc[[1, 3]])
    assert panel.selected_ids == ids_at(panel, [1, 3])
    assert panel.table.selected_rows == [1, 3]

    mask = fleet["status"] == "ERROR"
    panel.select(mask)
    assert panel.selected_ids == list(fleet["instance_id"][mask])

    panel.select([])
    assert panel.selected_ids == []
    assert panel.table.selected_rows == []


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        (["not-a-uuid"], "not instance ids"),
        ([str(uuid.UUID(int=7, version=4))], "not in the listed fleet"),
        ("one-string", "not a single string"),
    ],
)
def test_select_refuses_what_is_not_a_listed_instance_and_keeps_the_selection(
    panel: Panel, selection: Any, message: str
) -> None:
    panel.select(ids_at(panel, [0]))

    with pytest.raises(ValueError, match=message):
        panel.select(selection)

    assert panel.selected_ids == ids_at(panel, [0])


def test_select_refuses_an_id_given_twice(panel: Panel) -> None:
    twice = ids_at(panel, [0, 0])

    with pytest.raises(ValueError, match="more than once"):
        panel.select(twice)


def test_a_mask_over_another_frame_is_refused(panel: Panel) -> None:
    mask = pd.Series([True, False], index=[100, 101])

    with pytest.raises(ValueError, match=r"mask over panel\.fleet"):
        panel.select(mask)


def test_refresh_keeps_the_selection_by_id_and_names_the_vanished(
    mock_client: MockFactory,
) -> None:
    fleet = records(6)
    client, _ = mock_client(serving(fleet))
    panel = Panel(client)
    chosen = [fleet[n]["instance_id"] for n in (1, 3, 4)]
    panel.select(chosen)

    gone = fleet.pop(3)
    fleet.reverse()
    panel.refresh_button.click()
    assert panel.wait(WAIT)

    # listed now: 5, 4, 2, 1, 0; of those, 4 and 1 were selected
    assert panel.selected_ids == [chosen[2], chosen[0]]
    assert panel.selected_ids == ids_at(panel, panel.table.selected_rows)
    assert any(
        "no longer listed" in line and gone["instance_id"] in line
        for line in panel.message_lines
    )


# -- the Run button ------------------------------------------------------------


@pytest.mark.parametrize(
    ("selected", "action", "typed", "disabled"),
    [
        (0, "restart", "", True),
        (2, "restart", "", False),
        (0, "delete", "0", True),
        (2, "delete", "", True),
        (2, "delete", "3", True),
        (2, "delete", "two", True),
        (2, "delete", "2", False),
        (2, "delete", " 2 ", False),
    ],
)
def test_run_is_enabled_only_when_there_is_something_to_do_and_it_is_confirmed(
    panel: Panel, selected: int, action: str, typed: str, disabled: bool
) -> None:
    panel.table.selected_rows = running_positions(panel, selected)
    panel.action_picker.value = action
    panel.confirm_box.value = typed

    assert panel.run_button.disabled is disabled


def test_a_typed_count_is_cleared_when_the_selection_or_action_changes(
    panel: Panel,
) -> None:
    positions = running_positions(panel, 3)
    panel.action_picker.value = "delete"
    panel.table.selected_rows = positions[:2]
    assert "type the number of instances to delete: 2" in panel.confirm_label.value
    panel.confirm_box.value = "2"
    assert not panel.run_button.disabled

    panel.table.selected_rows = positions[1:]
    assert panel.confirm_box.value == ""
    assert panel.run_button.disabled

    panel.confirm_box.value = "2"
    panel.action_picker.value = "restart"
    assert panel.confirm_box.value == ""


def test_the_plan_shows_what_is_skipped_and_why(panel: Panel) -> None:
    fleet = panel.fleet
    panel.select(fleet[fleet["status"] == "ERROR"])

    plan = panel.plan
    assert plan is not None
    assert plan.count == 0
    assert "only RUNNING instances can be restarted" in panel.plan_area.value
    assert panel.run_button.disabled


def test_the_plan_warns_that_deleting_has_no_backup(panel: Panel) -> None:
    panel.table.selected_rows = running_positions(panel, 1)

    panel.action_picker.value = "delete"
    assert "no backup" in panel.plan_area.value
    assert panel.confirm_row.layout.display == "flex"

    panel.action_picker.value = "restart"
    assert "no backup" not in panel.plan_area.value
    assert panel.confirm_row.layout.display == "none"


# -- running -----------------------------------------------------------------


def test_restart_acts_on_exactly_the_selected_rows_and_merges_the_results(
    panel: Panel, sim: Simulator
) -> None:
    positions = running_positions(panel, 3)
    panel.table.selected_rows = positions
    chosen = ids_at(panel, positions)

    panel.run_button.click()
    assert panel.wait(WAIT)

    merged = panel.merged
    assert merged is not None
    assert list(merged["instance_id"]) == list(panel.fleet["instance_id"])
    acted = merged["instance_id"].isin(chosen)
    assert (merged["result"][acted] == "success").all()
    assert merged["result"][~acted].isna().all()
    assert sorted(acted_on(sim)) == sorted(("restart", i) for i in chosen)

    results = panel.results
    assert results is not None
    assert results.attrs["summary"].startswith("restart: 3 instance(s), 3 success")
    assert set(results["status_after"]) == {"RUNNING"}
    assert "restart: 3 instance(s), 3 success" in panel.summary.value
    assert panel.progress.value == panel.progress.max == 3
    assert panel.progress.bar_style == "success"
    assert not panel.run_button.disabled


def test_the_results_table_shows_the_acted_on_rows_with_coloured_results(
    panel: Panel,
) -> None:
    panel.table.selected_rows = running_positions(panel, 2)
    panel.run_button.click()
    assert panel.wait(WAIT)

    rows = table_rows(panel.results_table)
    assert len(rows) == 2
    assert panel.results_table.layout.display == ""
    assert all('<b style="color:#1a7f37">success</b>' in row for row in rows)


def test_delete_needs_the_count_and_acts_on_exactly_the_selected_rows(
    panel: Panel, sim: Simulator
) -> None:
    positions = running_positions(panel, 2)
    panel.table.selected_rows = positions
    chosen = ids_at(panel, positions)
    panel.action_picker.value = "delete"

    panel.confirm_box.value = "3"
    panel.run_button.click()
    assert panel.wait(WAIT)
    assert acted_on(sim) == []
    assert "needs the number 2 typed in the box" in panel.message_lines[-1]

    panel.confirm_box.value = "2"
    panel.run_button.click()
    assert panel.wait(WAIT)

    assert sorted(acted_on(sim)) == sorted(("delete", i) for i in chosen)
    merged = panel.merged
    assert merged is not None
    assert list(merged["result"].dropna()) == ["success", "success"]
    assert panel.confirm_box.value == ""
    assert panel.run_button.disabled


def test_nothing_selected_and_clicked_anyway_sends_nothing(
    panel: Panel, sim: Simulator
) -> None:
    panel.run_button.click()

    assert panel.wait(WAIT)
    assert acted_on(sim) == []
    assert "no instances selected" in panel.message_lines[-1]


def test_a_large_selection_is_sent_in_calls_of_50_with_progress(
    tmp_path: Path,
) -> None:
    with simulated(tmp_path, 130) as (sim, client):
        panel = Panel(client, tracking=FOLLOW)
        panel.select(panel.fleet)
        seen: list[int] = []
        panel.progress.observe(lambda change: seen.append(change["new"]), "value")

        panel.run_button.click()
        assert panel.wait(WAIT)

        assert sim.requests[("POST", "action")] == 3
    assert panel.progress.value == panel.progress.max == 130
    assert seen == sorted(seen)
    assert panel.progress_label.value.startswith(
        "restart: 130 instance(s), 130 success"
    )
    results = panel.results
    assert results is not None
    assert set(results["result"]) == {"success"}
    assert sorted(set(results["wave"])) == [1]


def test_a_service_that_went_away_stops_the_run_before_anything_is_sent(
    panel: Panel, sim: Simulator
) -> None:
    panel.table.selected_rows = running_positions(panel, 2)
    sim.stop()

    panel.run_button.click()
    assert panel.wait(WAIT)

    results = panel.results
    assert results is not None
    assert list(results["result"]) == ["skipped", "skipped"]
    line = panel.message_lines[-1]
    assert line.startswith("error: the run failed: could not be read")
    assert "Nothing was sent" in line
    assert "click Refresh, read the new plan" in line

    panel.refresh_button.click()
    assert panel.wait(WAIT)
    assert "listing the fleet failed" in panel.message_lines[-1]
    assert "a simulator must still be running" in panel.message_lines[-1]


def test_a_refused_call_is_shown_with_the_service_error(
    panel: Panel, sim: Simulator
) -> None:
    def forbid_actions(call: Call, serve: Serve) -> Reply | None:
        if call.route.kind != "action":
            return serve()
        body = {"error_code": "DMS.10240306", "error_msg": "The tenant is frozen."}
        return Reply(403, json.dumps(body).encode())

    sim.interceptor = forbid_actions
    panel.table.selected_rows = running_positions(panel, 2)

    panel.run_button.click()
    assert panel.wait(WAIT)

    results = panel.results
    assert results is not None
    assert list(results["result"]) == ["failed", "failed"]
    assert set(results["error_code"]) == {"DMS.10240306"}
    shown = "\n".join(panel.message_lines)
    assert "2 instance(s) failed: refused: HTTP 403 DMS.10240306" in shown
    assert panel.progress.bar_style == "danger"
    assert acted_on(sim) == []


def test_cancel_stops_following_and_says_what_is_known(tmp_path: Path) -> None:
    slow = Timings(restart_seconds=60, delete_seconds=60)
    with simulated(tmp_path, 5, timings=slow) as (sim, client):
        panel = Panel(client, tracking=FOLLOW)
        panel.table.selected_rows = [0, 1]
        assert panel.cancel_button.disabled

        panel.run_button.click()
        while not acted_on(sim):
            assert panel.running
            time.sleep(0.01)
        assert not panel.cancel_button.disabled
        panel.cancel_button.click()
        assert panel.wait(WAIT)

    results = panel.results
    assert results is not None
    assert list(results["result"]) == ["unknown", "unknown"]
    assert results["reason"].str.startswith("tracking cancelled").all()
    assert any("cancel asked" in line for line in panel.message_lines)


def test_a_wrong_secret_key_is_shown_and_never_displayed(
    sim: Simulator,
) -> None:
    wrong_sk = "WrongSecretKeyThatMustNeverBeShown0123456"
    with dmsnb.Client(
        endpoint=sim.base_url,
        project_id=sim.project_id,
        ak=sim.ak,
        sk=wrong_sk,
        audit=None,
    ) as client:
        panel = Panel(client)

    assert len(panel.fleet) == 0
    line = panel.message_lines[-1]
    assert line.startswith("error: listing the fleet failed: HTTP 401")
    assert "check the AK/SK pair" in line
    assert wrong_sk not in widget_text(panel.widget)


def test_an_unexpected_error_is_shown_and_every_instance_keeps_a_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulated(tmp_path, 120) as (_, client):
        panel = Panel(client, tracking=FOLLOW)
        real = client._post_action
        calls: list[int] = []

        def breaks_on_the_second_call(*args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("the wire melted")
            return real(*args, **kwargs)

        monkeypatch.setattr(client, "_post_action", breaks_on_the_second_call)
        panel.select(panel.fleet)

        panel.run_button.click()
        assert panel.wait(WAIT)

    results = panel.results
    assert results is not None
    assert list(results["instance_id"]) == panel.selected_ids
    assert results["result"].value_counts().to_dict() == {
        "unknown": 100,
        "skipped": 20,
    }
    assert any("failed unexpectedly" in line for line in panel.message_lines)
    assert any("the wire melted" in line for line in panel.message_lines)


def test_delete_failed_needs_the_box_ticked(panel: Panel, sim: Simulator) -> None:
    assert panel.delete_failed_button.disabled

    panel.delete_failed_button.click()
    assert panel.wait(WAIT)
    assert acted_on(sim) == []
    assert "tick the box" in panel.message_lines[-1]

    panel.delete_failed_confirm.value = True
    assert not panel.delete_failed_button.disabled
    panel.delete_failed_button.click()
    assert panel.wait(WAIT)

    assert [action for action, _ in acted_on(sim)] == ["delete", "delete"]
    assert "delete_failed: 2 instance(s), 2 success" in panel.summary.value
    assert "CREATEFAILED" not in set(sim.fleet.statuses().values())
    assert panel.delete_failed_confirm.value is False
    assert panel.delete_failed_button.disabled


# -- secrets -------------------------------------------------------------------


def all_widgets(root: widgets.Widget) -> list[widgets.Widget]:
    """``root`` and every widget it refers to, by child or by trait."""
    found: dict[str, widgets.Widget] = {}
    pending = [root]
    while pending:
        widget = pending.pop()
        if widget.model_id in found:
            continue
        found[widget.model_id] = widget
        for name in widget.keys:
            value = getattr(widget, name)
            values = value if isinstance(value, list | tuple) else [value]
            pending += [v for v in values if isinstance(v, widgets.Widget)]
    return list(found.values())


def widget_text(root: widgets.Widget) -> str:
    """Everything the front end is sent about ``root``, as one string.

    The itables widget's JavaScript and CSS bundle (``_esm``, ``_css``) is
    left out: it is library code, the same for every table, and it spells
    ``lastIndexOfSignature=`` in its zip reader.
    """
    states = []
    for widget in all_widgets(root):
        state = widget.get_state()
        states.append({k: v for k, v in state.items() if k not in ("_esm", "_css")})
    return json.dumps(states, default=str)


def test_no_secret_reaches_any_widget(panel: Panel, sim: Simulator) -> None:
    panel.table.selected_rows = running_positions(panel, 2)
    panel.run_button.click()
    assert panel.wait(WAIT)
    sim.stop()
    panel.refresh_button.click()
    assert panel.wait(WAIT)

    text = widget_text(panel.widget)
    assert len(all_widgets(panel.widget)) > 20
    assert "restart: 2 instance(s), 2 success" in text
    assert "listing the fleet failed" in text
    for secret in (sim.sk, "Signature=", "SDK-HMAC-SHA256", "X-Auth-Token"):
        assert secret not in text


# -- hints and imports ---------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        (dmsnb.PlanError("changed"), "read the new plan"),
        (dmsnb.AuthError(401, "APIGW.0301", "bad", None), "check the AK/SK pair"),
        (dmsnb.NotFoundError(404, "DMS.00404022", "gone", None), "click Refresh"),
        (dmsnb.ActionOutcomeUnknown("lost", sent=True), "the service may have acted"),
        (dmsnb.TransportError("down", sent=False), "check the endpoint"),
        (dmsnb.ConfigError("no key"), "make a new panel"),
        (dmsnb.APIError(400, "DMS.00400026", "busy", None), "see the error code"),
        (ValueError("empty"), "nothing was sent"),
        (RuntimeError("bug"), "this is a dmsnb bug"),
    ],
)
def test_every_error_comes_with_what_to_do(error: Exception, hint: str) -> None:
    assert hint in hint_for(error)


def test_without_the_notebook_extra_the_panel_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "dmsnb._panel")
    monkeypatch.setitem(sys.modules, "itables.widget", None)

    with pytest.raises(ImportError, match=r"pip install 'dmsnb\[notebook\]'"):
        importlib.import_module("dmsnb._panel")


def test_importing_dmsnb_loads_no_widget_library() -> None:
    code = (
        "import sys, dmsnb; "
        "print(sorted(m for m in ('ipywidgets', 'itables', 'anywidget') "
        "if m in sys.modules))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip() == "[]"


def test_a_client_project_id_is_the_one_shown(mock_client: MockFactory) -> None:
    client, _ = mock_client(serving(records(1)))

    assert PROJECT_ID in Panel(client).header.value


# -- in a real browser -----------------------------------------------------------

BROWSER_CELLS = (
    """\
import dmsnb
from dmsnb.simulator import Simulator

sim = Simulator(instances=2000, seed=3).start()
panel = dmsnb.Panel(sim.client(audit=None))
panel
""",
    # Run later by the test: a change in the fleet makes Refresh rebuild the table.
    'sim.fleet.set_status(panel.selected_ids[-1], "FROZEN")',
)


def chromium_path() -> str:
    # Opt-in: it starts JupyterLab and Chromium, some 15 s on a quiet machine.
    if os.environ.get("DMSNB_BROWSER_TESTS") != "1":
        pytest.skip("set DMSNB_BROWSER_TESTS=1 to drive a real browser")
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("no chromium on this machine")
    return found


@pytest.fixture
def browser_path() -> str:
    """Chromium's path; skips unless asked for and available."""
    path = chromium_path()
    pytest.importorskip("playwright.sync_api")
    return path


def lab_answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def jupyterlab(tmp_path: Path) -> Iterator[str]:
    """JupyterLab on 127.0.0.1 serving one notebook that shows a panel."""
    root = tmp_path / "lab"
    root.mkdir()
    cells = [nbformat.v4.new_code_cell(source) for source in BROWSER_CELLS]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, root / "panel.ipynb")

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = uuid.uuid4().hex
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    lab = subprocess.Popen(
        [
            *(sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root"),
            *("--ip=127.0.0.1", f"--port={port}", f"--ServerApp.root_dir={root}"),
            *(f"--IdentityProvider.token={token}", "--expose-app-in-browser"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while not lab_answers(f"{base}/api/status?token={token}"):
            assert lab.poll() is None, "JupyterLab stopped while starting"
            assert time.monotonic() < deadline, "JupyterLab did not start in 60 s"
            time.sleep(0.3)
        yield f"{base}/lab/tree/panel.ipynb?token={token}"
    finally:
        lab.terminate()
        lab.wait(timeout=30)


@pytest.mark.browser
def test_rows_clicked_in_a_real_browser_reach_the_kernel_by_id(
    browser_path: str, jupyterlab: str
) -> None:
    from playwright import sync_api

    patience = 60.0

    def eventually(check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + patience
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up waiting: {what}")
            time.sleep(0.2)

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=browser_path, args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(patience * 1000)
        page.goto(jupyterlab)
        page.wait_for_function("window.jupyterapp !== undefined")
        page.wait_for_selector(".jp-Notebook")
        eventually(
            lambda: bool(page.evaluate("window.jupyterapp.shell.currentWidget")),
            "the notebook to open",
        )

        def run_cell(index: int) -> None:
            page.evaluate(
                "index => { const app = window.jupyterapp;"
                " app.shell.currentWidget.content.activeCellIndex = index;"
                " return app.commands.execute('notebook:run-cell'); }",
                index,
            )

        run_cell(0)

        table = page.locator(".itables_anywidget").first
        rows = table.locator("tbody tr")
        rows.first.wait_for()
        plan = page.locator(".widget-html-content", has_text="Plan:").first

        def first_cell(row: Any) -> str:
            return str(row.locator("td").first.inner_text())

        def plan_lists(ids: list[str]) -> bool:
            # The plan is drawn by the kernel from the ids it received.
            text = plan.inner_text() if plan.count() else ""
            planned = re.search(r"(\d+) instance\(s\) to act on, (\d+) skipped", text)
            if planned is None:
                return False
            total = int(planned.group(1)) + int(planned.group(2))
            return total == len(ids) and all(i in text for i in ids)

        picked = [first_cell(rows.nth(0)), first_cell(rows.nth(2))]
        rows.nth(0).click()
        rows.nth(2).click()
        picked.append(first_cell(rows.nth(1)))
        rows.nth(1).click(modifiers=["Shift"])
        eventually(lambda: plan_lists(picked), f"the plan to list {picked}")

        # A row far past the 64 KB that itables keeps by default.
        table.locator(".dt-paging-button.last").first.click()
        picked.append(first_cell(rows.last))
        rows.last.click()
        eventually(lambda: plan_lists(picked), f"the plan to list {picked}")

        # Refresh: the table is rebuilt, the selection comes back by id, and
        # clicks still reach the kernel.
        rows.first.evaluate("row => { row.dataset.before = 'refresh' }")
        run_cell(1)
        page.locator("button.jupyter-button", has_text="Refresh").first.click()
        eventually(
            lambda: table.locator("tr[data-before]").count() == 0,
            "the table to be rebuilt",
        )
        info = table.locator(".dt-info").first
        eventually(
            lambda: f"{len(picked)} rows selected" in info.inner_text(),
            "the selection to come back",
        )
        # The rebuilt table starts on its first page again.
        picked.append(first_cell(rows.nth(5)))
        rows.nth(5).click()
        eventually(lambda: plan_lists(picked), f"the plan to list {picked}")
        browser.close()
