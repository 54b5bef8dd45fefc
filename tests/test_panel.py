"""The panel, headless: filters and selections set as the browser sets them,
buttons clicked by code, against the simulator."""

from __future__ import annotations

import importlib
import json
import re
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
from nbclient import NotebookClient

import dmsnb
from dmsnb import Panel
from dmsnb._panel import GRID_COLUMNS, FleetFilter, hint_for, parse_tag_filter
from dmsnb.simulator import (
    Call,
    Faults,
    Reply,
    Serve,
    Simulator,
    Timings,
    derived_keys,
)

from .conftest import PROJECT_ID
from .notebook_kernel import NOTEBOOKS, errors, notebook_kernel, outputs

MockFactory = Callable[..., tuple[dmsnb.Client, list[httpx.Request]]]

FAST = Timings(restart_seconds=0.2, delete_seconds=0.2, list_hides_deleting_after=0)
SLOW = Timings(restart_seconds=60, delete_seconds=60)
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
def panel(client: dmsnb.Client, tmp_path: Path) -> Panel:
    return Panel(client, tracking=FOLLOW, export_folder=tmp_path)


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
    """Positions in the shown table of the first ``count`` RUNNING instances."""
    shown = panel.table.df
    assert shown is not None
    return [int(n) for n in shown.index[shown["status"] == "RUNNING"][:count]]


def ids_at(panel: Panel, positions: list[int]) -> list[str]:
    shown = panel.table.df
    assert shown is not None
    return [str(shown["instance_id"][n]) for n in positions]


def acted_on(sim: Simulator) -> list[tuple[str, str]]:
    return [(record.action, record.instance_id) for record in sim.action_log]


def table_rows(table: Any) -> list[list[Any]]:
    rows: list[list[Any]] = json.loads(table._dt_args["data_json"])
    return rows


def shown_names(panel: Panel) -> list[str]:
    shown = panel.table.df
    assert shown is not None
    return list(shown["name"])


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


def line_containing(panel: Panel, text: str) -> str:
    found = [line for line in panel.message_lines if text in line]
    assert found, f"no message says {text!r}: {panel.message_lines}"
    return found[-1]


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


def test_the_panel_displays_as_one_widget_with_readable_fallbacks(
    panel: Panel, sim: Simulator
) -> None:
    bundle = panel._repr_mimebundle_()

    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == panel.widget.model_id
    assert bundle["text/plain"] == repr(panel)
    assert "30 instance(s), 0 selected" in repr(panel)
    fallback = bundle["text/html"]
    assert "<b>dmsnb panel</b> on the SIMULATOR" in fallback
    assert sim.project_id in fallback
    assert "30 instance(s) listed, 0 selected." in fallback
    assert "run the cell again" in fallback
    assert sim.sk not in json.dumps(bundle)


def test_the_fallback_names_the_last_run(panel: Panel) -> None:
    panel.table.selected_rows = running_positions(panel, 1)
    panel.run_button.click()
    assert panel.wait(WAIT)

    fallback = panel._repr_mimebundle_()["text/html"]

    assert "Last run: restart: 1 instance(s), 1 success" in fallback


def test_the_table_shows_the_useful_columns_as_text(panel: Panel) -> None:
    shown = panel.table.df
    assert shown is not None

    assert tuple(shown.columns) == GRID_COLUMNS
    assert len(shown) == len(panel.fleet) == 30
    assert shown["created_at"].str.endswith(" UTC").all()
    tagged = shown["tags"][shown["tags"] != ""]
    assert tagged.str.contains("env=").all()
    assert "30 instance(s) listed" in panel.fleet_info.value
    assert "2 whose creation failed" in panel.fleet_info.value
    assert panel.filter_info.value == "showing all 30"


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


def test_2000_instances_build_and_filter_quickly(mock_client: MockFactory) -> None:
    # Generous bounds for a busy 2-core machine; it takes some 0.1 s and 20 ms.
    fleet = records(2_000)
    for n, record in enumerate(fleet):
        record["status"] = "ERROR" if n % 10 == 0 else "RUNNING"
    client, _ = mock_client(serving(fleet))

    started = time.perf_counter()
    panel = Panel(client)
    built = time.perf_counter() - started
    started = time.perf_counter()
    panel.status_filter.value = ("ERROR",)
    filtered = time.perf_counter() - started
    started = time.perf_counter()
    panel.select_shown_button.click()
    selected = time.perf_counter() - started

    assert len(panel.shown_ids) == 200
    assert len(panel.selected_ids) == 200
    assert built < 5.0
    assert filtered < 1.0
    assert selected < 1.0


def test_names_from_the_service_are_escaped_in_the_table(
    mock_client: MockFactory,
) -> None:
    fleet = records(1)
    fleet[0]["name"] = "<img src=x onerror=alert(1)>"
    client, _ = mock_client(serving(fleet))

    panel = Panel(client)

    assert "<img" not in panel.table._dt_args["data_json"]
    assert "&lt;img" in panel.table._dt_args["data_json"]
    panel.select(panel.fleet)
    assert "<img" not in panel.plan_area.value


# -- filters -----------------------------------------------------------------

FILTER_FLEET = [
    ("kafka-orders-prod-01", "RUNNING", "3.x", "env=prod,team=orders"),
    ("kafka-orders-stg-01", "RUNNING", "2.7", "env=stg,team=orders"),
    ("Kafka-Pay-PROD-02", "ERROR", "3.x", "env=prod,team=pay"),
    ("kafka-pay-dev-01", "CREATEFAILED", "2.7", "env=dev"),
    ("kafka-search-prod-03", "RESTARTING", "3.x", "team=search"),
]


@pytest.fixture
def filter_panel(mock_client: MockFactory) -> Panel:
    fleet = records(len(FILTER_FLEET))
    for record, (name, status, version, tags) in zip(fleet, FILTER_FLEET, strict=True):
        pairs = [tag.split("=") for tag in tags.split(",")]
        record.update(name=name, status=status, engine_version=version)
        record["tags"] = [{"key": k, "value": v} for k, v in pairs]
    client, _ = mock_client(serving(fleet))
    return Panel(client)


@pytest.mark.parametrize(
    ("statuses", "name", "version", "tags", "shown"),
    [
        ((), "", "", "", [0, 1, 2, 3, 4]),
        (("RUNNING",), "", "", "", [0, 1]),
        (("RUNNING", "ERROR"), "", "", "", [0, 1, 2]),
        ((), "prod", "", "", [0, 2, 4]),  # a part of the name, any case
        ((), "PAY", "", "", [2, 3]),
        ((), "kafka-*-prod-0?", "", "", [0, 2, 4]),  # a pattern, whole name
        ((), "*-prod", "", "", []),
        ((), "kafka-[op]*", "", "", [0, 1, 2, 3]),
        ((), "", "2.7", "", [1, 3]),
        ((), "", "", "env=prod", [0, 2]),
        ((), "", "", "env=prod, team=pay", [2]),
        ((), "", "", "team", [0, 1, 2, 4]),  # the key alone: any value
        ((), "", "", "env=PROD", []),  # tag values are exact
        (("RUNNING",), "orders", "3.x", "env=prod", [0]),
    ],
)
def test_filters_show_the_rows_that_meet_every_condition(
    filter_panel: Panel,
    statuses: tuple[str, ...],
    name: str,
    version: str,
    tags: str,
    shown: list[int],
) -> None:
    filter_panel.status_filter.value = statuses
    filter_panel.name_filter.value = name
    filter_panel.version_filter.value = version
    filter_panel.tag_filter.value = tags

    assert shown_names(filter_panel) == [FILTER_FLEET[n][0] for n in shown]
    active = bool(statuses or name or version or tags)
    info = f"showing {len(shown)} of 5" if active else "showing all 5"
    assert filter_panel.filter_info.value.startswith(info)


def test_the_filter_choices_are_the_statuses_and_versions_listed(
    filter_panel: Panel,
) -> None:
    assert list(filter_panel.status_filter.options) == [
        ("CREATEFAILED (1)", "CREATEFAILED"),
        ("ERROR (1)", "ERROR"),
        ("RESTARTING (1)", "RESTARTING"),
        ("RUNNING (2)", "RUNNING"),
    ]
    assert [value for _, value in filter_panel.version_filter.options] == [
        "",
        "2.7",
        "3.x",
    ]


def test_clear_filters_shows_everything_again(filter_panel: Panel) -> None:
    filter_panel.status_filter.value = ("RUNNING",)
    filter_panel.name_filter.value = "stg"
    assert len(filter_panel.shown_ids) == 1

    filter_panel.clear_filters_button.click()

    assert len(filter_panel.shown_ids) == 5
    assert filter_panel.status_filter.value == ()
    assert filter_panel.name_filter.value == ""
    assert filter_panel.filter_info.value == "showing all 5"


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("", ()),
        ("env=prod", (("env", "prod"),)),
        (" env = prod , team ", (("env", "prod"), ("team", None))),
        ("note=", (("note", ""),)),
        ("a=b=c", (("a", "b=c"),)),
    ],
)
def test_tag_filters_read_key_value_pairs(
    text: str, parsed: tuple[tuple[str, str | None], ...]
) -> None:
    assert parse_tag_filter(text) == parsed


def test_a_tag_filter_without_a_key_is_shown_and_left_out(
    filter_panel: Panel,
) -> None:
    filter_panel.status_filter.value = ("RUNNING",)

    filter_panel.tag_filter.value = "=prod"

    line = filter_panel.message_lines[-1]
    assert line.startswith("error: filtering failed: tag filter '=prod' has no key")
    assert "write key=value" in line
    assert len(filter_panel.shown_ids) == 2
    assert "(tag filter left out)" in filter_panel.filter_info.value

    # A refresh with the bad text still there lists and shows the fleet.
    filter_panel.refresh_button.click()
    assert filter_panel.wait(WAIT)
    assert "filtering failed: tag filter" in filter_panel.message_lines[-1]
    assert "listing the fleet failed" not in "".join(filter_panel.message_lines)
    assert len(filter_panel.shown_ids) == 2


def test_a_filter_describes_itself() -> None:
    wanted = FleetFilter(
        statuses=("RUNNING", "ERROR"), name="*-prod", tags=(("env", None),)
    )

    assert wanted.describe() == "status RUNNING or ERROR; name *-prod; tag env"
    assert not FleetFilter().active


# -- selection ---------------------------------------------------------------


def test_rows_clicked_in_the_browser_become_instance_ids(panel: Panel) -> None:
    panel.table.selected_rows = [4, 0, 7]

    assert panel.selected_ids == ids_at(panel, [0, 4, 7])
    assert "Plan: restart: " in panel.plan_area.value
    assert panel.selection_info.value == "<b>3 selected</b>"


def test_the_selection_survives_filtering_and_counts_the_hidden(
    filter_panel: Panel,
) -> None:
    filter_panel.table.selected_rows = [0, 2]  # orders-prod-01, Pay-PROD-02
    chosen = filter_panel.selected_ids

    filter_panel.status_filter.value = ("RUNNING",)
    assert shown_names(filter_panel) == ["kafka-orders-prod-01", "kafka-orders-stg-01"]
    assert filter_panel.table.selected_rows == [0]
    assert "2 selected, 1 of them hidden by the filter" in (
        filter_panel.selection_info.value
    )
    assert filter_panel.selected_ids == chosen

    # A click in the filtered table changes only the rows it shows.
    filter_panel.table.selected_rows = [1]
    assert filter_panel.selected_ids == [filter_panel.shown_ids[1], chosen[1]]
    assert "2 selected, 1 of them hidden" in filter_panel.selection_info.value

    filter_panel.clear_filters_button.click()
    assert filter_panel.table.selected_rows == [1, 2]
    plan = filter_panel.plan
    assert plan is not None
    assert list(plan.frame["instance_id"]) == filter_panel.selected_ids


def test_select_all_shown_adds_the_shown_and_clear_empties(
    filter_panel: Panel,
) -> None:
    filter_panel.table.selected_rows = [3]  # pay-dev-01, CREATEFAILED
    filter_panel.status_filter.value = ("RUNNING", "ERROR")

    filter_panel.select_shown_button.click()
    assert filter_panel.select_shown_button.description == "Select all shown (3)"
    assert len(filter_panel.selected_ids) == 4
    assert filter_panel.table.selected_rows == [0, 1, 2]
    assert "4 selected, 1 of them hidden" in filter_panel.selection_info.value

    filter_panel.clear_selection_button.click()
    assert filter_panel.selected_ids == []
    assert filter_panel.table.selected_rows == []
    assert filter_panel.plan is None
    assert filter_panel.run_button.disabled


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


def test_select_by_code_may_pick_instances_the_filter_hides(panel: Panel) -> None:
    panel.status_filter.value = ("ERROR",)
    fleet = panel.fleet

    panel.select(fleet[fleet["status"] == "RUNNING"].head(2))

    assert len(panel.selected_ids) == 2
    assert panel.table.selected_rows == []
    assert "2 selected, 2 of them hidden" in panel.selection_info.value


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
    assert gone["instance_id"] in line_containing(panel, "no longer listed")


def test_refresh_keeps_the_filter(mock_client: MockFactory) -> None:
    fleet = records(4)
    fleet[0]["status"] = "ERROR"
    client, _ = mock_client(serving(fleet))
    panel = Panel(client)
    panel.status_filter.value = ("ERROR",)
    assert len(panel.shown_ids) == 1

    fleet[1]["status"] = "ERROR"
    panel.refresh_button.click()
    assert panel.wait(WAIT)

    assert panel.status_filter.value == ("ERROR",)
    assert panel.shown_ids == [fleet[0]["instance_id"], fleet[1]["instance_id"]]
    assert ("ERROR (2)", "ERROR") in panel.status_filter.options


# -- the plan and the Run button ---------------------------------------------


@pytest.mark.parametrize(
    ("selected", "action", "typed", "disabled"),
    [
        (0, "restart", "", True),
        (2, "restart", "", False),
        (2, "rolling_restart", "", False),
        (0, "delete", "0", True),
        (2, "delete", "", True),
        (2, "delete", "3", True),
        (2, "delete", "two", True),
        (2, "delete", "2", False),
        (2, "delete", " 2 ", False),
        (0, "delete_failed", "", True),
        (0, "delete_failed", "1", True),
        (0, "delete_failed", "2", False),  # the two failed creations
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


def test_the_plan_shows_each_instance_acted_on_or_skipped_and_why(
    panel: Panel,
) -> None:
    fleet = panel.fleet
    running = fleet[fleet["status"] == "RUNNING"].head(2)
    broken = fleet[fleet["status"] == "ERROR"]
    panel.select(pd.concat([running, broken]))

    plan_frame = panel.plan_frame
    assert plan_frame is not None
    assert list(plan_frame["allowed"]) == [True, True, False]
    area = panel.plan_area.value
    assert "Plan: restart: 2 instance(s) to act on, 1 skipped" in area
    assert "Skipped: 1 &times; status ERROR: only RUNNING instances" in area
    assert area.count(">acted on</b>") == 2
    assert area.count(">skipped</b>") == 1
    for instance_id in plan_frame["instance_id"]:
        assert instance_id in area
    assert panel.run_button.description == "Run: restart 2"


def test_a_plan_with_nothing_to_do_keeps_run_disabled(panel: Panel) -> None:
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


def test_a_rolling_restart_shows_its_waves(panel: Panel) -> None:
    panel.table.selected_rows = running_positions(panel, 5)
    assert panel.wave_size.layout.display == "none"

    panel.action_picker.value = "rolling_restart"
    panel.wave_size.value = 2

    assert panel.wave_size.layout.display == ""
    assert "Rolling: 3 wave(s) of up to 2" in panel.plan_area.value
    assert panel.run_button.description == "Run: rolling restart 5"


def test_delete_failed_plans_every_failed_creation_whatever_is_selected(
    panel: Panel,
) -> None:
    panel.table.selected_rows = running_positions(panel, 3)

    panel.action_picker.value = "delete_failed"

    plan_frame = panel.plan_frame
    assert plan_frame is not None
    assert set(plan_frame["status"]) == {"CREATEFAILED"}
    assert len(plan_frame) == 2
    assert "the selection is not used" in panel.plan_area.value
    assert "type the number of instances to delete: 2" in panel.confirm_label.value


def test_protection_rules_are_in_every_plan(client: dmsnb.Client) -> None:
    rule = dmsnb.Protection(names=["*"], label="all")
    panel = Panel(client, protect=rule)
    panel.table.selected_rows = running_positions(panel, 2)

    panel.action_picker.value = "delete"

    plan = panel.plan
    assert plan is not None
    assert plan.count == 0
    assert "protected: name matches" in panel.plan_area.value
    panel.confirm_box.value = "0"
    assert panel.run_button.disabled


# -- act and watch -----------------------------------------------------------


def test_restart_acts_on_exactly_the_selected_rows_and_merges_the_results(
    panel: Panel, sim: Simulator
) -> None:
    positions = running_positions(panel, 3)
    panel.table.selected_rows = positions
    chosen = ids_at(panel, positions)
    listed = list(panel.fleet["instance_id"])

    panel.run_button.click()
    assert panel.wait(WAIT)

    merged = panel.merged
    assert merged is not None
    assert list(merged["instance_id"]) == listed
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
    assert "pending 0" in panel.progress_label.value
    assert "success 3" in panel.progress_label.value
    assert panel.elapsed_label.value.endswith(" s elapsed")
    assert panel.selected_ids == chosen  # still selected, from a fresh list
    assert not panel.run_button.disabled


def test_the_results_table_colours_statuses_and_results(panel: Panel) -> None:
    panel.table.selected_rows = running_positions(panel, 2)
    panel.run_button.click()
    assert panel.wait(WAIT)

    rows = table_rows(panel.results_table)
    assert len(rows) == 2
    assert panel.results_table.layout.display == ""
    assert all('<b style="color:#1a7f37">success</b>' in row for row in rows)
    assert all('<span style="color:#1a7f37">RUNNING</span>' in row for row in rows)


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
    # The list read after the run no longer has them, so they left the selection.
    assert panel.selected_ids == []
    assert "2 selected instance(s) are no longer listed" in panel.message_lines[-1]


def test_delete_failed_needs_the_count_typed(panel: Panel, sim: Simulator) -> None:
    panel.action_picker.value = "delete_failed"

    panel.run_button.click()
    assert panel.wait(WAIT)
    assert acted_on(sim) == []
    assert "needs the number 2 typed in the box" in panel.message_lines[-1]

    panel.confirm_box.value = "2"
    panel.run_button.click()
    assert panel.wait(WAIT)

    assert [action for action, _ in acted_on(sim)] == ["delete", "delete"]
    assert "delete_failed: 2 instance(s), 2 success" in panel.summary.value
    assert "without naming instances" in panel.summary.value
    assert "CREATEFAILED" not in set(sim.fleet.statuses().values())
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
        panel.select_shown_button.click()
        seen: list[int] = []
        panel.progress.observe(lambda change: seen.append(change["new"]), "value")

        panel.run_button.click()
        assert panel.wait(WAIT)

        assert sim.requests[("POST", "action")] == 3
    assert panel.progress.value == panel.progress.max == 130
    assert seen == sorted(seen)
    assert "success 130" in panel.progress_label.value
    results = panel.results
    assert results is not None
    assert set(results["result"]) == {"success"}
    assert sorted(set(results["wave"])) == [1]


def test_a_rolling_restart_starts_each_wave_after_the_last_settled(
    panel: Panel, sim: Simulator
) -> None:
    panel.table.selected_rows = running_positions(panel, 5)
    panel.action_picker.value = "rolling_restart"
    panel.wave_size.value = 2

    panel.run_button.click()
    assert panel.wait(WAIT)

    results = panel.results
    assert results is not None
    assert list(results["wave"]) == [1, 1, 2, 2, 3]
    assert set(results["result"]) == {"success"}
    for wave in (2, 3):
        earlier = results[results["wave"] < wave]["settled_at"].max()
        assert (results[results["wave"] == wave]["requested_at"] > earlier).all()
    assert len(acted_on(sim)) == 5


def test_the_rows_update_and_the_kernel_answers_while_the_panel_works(
    tmp_path: Path,
) -> None:
    timings = Timings(restart_seconds=1.5, delete_seconds=1.5)
    with simulated(tmp_path, 12, timings=timings) as (sim, client):
        panel = Panel(client, tracking=FOLLOW)
        panel.table.selected_rows = [0, 1, 2]
        panel.action_picker.value = "rolling_restart"
        panel.wave_size.value = 1

        panel.run_button.click()
        while not acted_on(sim):
            time.sleep(0.01)

        # What another cell does meanwhile: it runs at once.
        started = time.perf_counter()
        listed = client.instances()
        total = int(pd.Series(range(100_000)).sum())
        answered_in = time.perf_counter() - started
        assert panel.running
        assert len(listed) == 12
        assert total == 4_999_950_000
        assert answered_in < 1.0

        deadline = time.monotonic() + WAIT
        while "pending" not in json.dumps(table_rows(panel.results_table)):
            assert time.monotonic() < deadline, "the rows never showed pending"
            time.sleep(0.05)
        assert panel.results_table.layout.display == ""
        assert re.search(r"pending [123] ", panel.progress_label.value)
        assert panel.wait(WAIT)

    rows = table_rows(panel.results_table)
    assert len(rows) == 3
    assert "pending" not in json.dumps(rows)


def test_a_failing_instance_stops_the_later_waves(tmp_path: Path) -> None:
    with simulated(tmp_path, 6, faults=Faults(restart_error_rate=1.0)) as (
        sim,
        client,
    ):
        panel = Panel(client, tracking=FOLLOW)
        panel.table.selected_rows = [0, 1, 2]
        panel.action_picker.value = "rolling_restart"
        panel.wave_size.value = 1

        panel.run_button.click()
        assert panel.wait(WAIT)

        results = panel.results
        assert results is not None
        assert list(results["result"]) == ["failed", "skipped", "skipped"]
        assert results["reason"][0] == "went to ERROR during the restart"
        assert results["reason"][1].startswith("not started: ")
        assert len(acted_on(sim)) == 1
    assert panel.progress.bar_style == "danger"
    assert "1 instance(s) failed: went to ERROR" in "\n".join(panel.message_lines)
    rows = json.dumps(table_rows(panel.results_table))
    assert '<b style=\\"color:#cf222e\\">failed</b>' in rows
    assert '<span style=\\"color:#cf222e\\">ERROR</span>' in rows


def test_an_instance_put_in_error_by_hand_is_skipped_with_the_reason(
    panel: Panel, sim: Simulator
) -> None:
    positions = running_positions(panel, 2)
    panel.table.selected_rows = positions
    broken = ids_at(panel, positions)[1]
    sim.fleet.set_status(broken, "ERROR")

    # The plan was made from the list shown; the run reads again and refuses.
    panel.run_button.click()
    assert panel.wait(WAIT)
    assert acted_on(sim) == []
    line = line_containing(panel, "the run failed")
    assert f"{broken} (RUNNING -> ERROR)" in line
    assert "click Refresh, read the new plan" in line

    # The list was read again after the refusal: the plan now skips it.
    plan = panel.plan
    assert plan is not None
    assert plan.skipped["instance_id"].tolist() == [broken]
    panel.run_button.click()
    assert panel.wait(WAIT)
    results = panel.results
    assert results is not None
    assert list(results["result"]) == ["success", "skipped"]


def test_cancel_stops_further_waves_and_says_which_were_acted_on(
    tmp_path: Path,
) -> None:
    with simulated(tmp_path, 5, timings=SLOW) as (sim, client):
        panel = Panel(client, tracking=FOLLOW)
        panel.table.selected_rows = [0, 1, 2]
        panel.action_picker.value = "rolling_restart"
        panel.wave_size.value = 1
        first = panel.selected_ids[0]
        assert panel.cancel_button.disabled

        panel.run_button.click()
        while not acted_on(sim):
            assert panel.running
            time.sleep(0.01)
        assert not panel.cancel_button.disabled
        panel.cancel_button.click()
        assert panel.wait(WAIT)

        assert acted_on(sim) == [("restart", first)]

    results = panel.results
    assert results is not None
    assert list(results["result"]) == ["unknown", "skipped", "skipped"]
    assert results["reason"][0].startswith("tracking cancelled")
    assert list(results["reason"][1:]) == [
        "cancelled before wave 2",
        "cancelled before wave 3",
    ]
    assert results["requested_at"].notna().tolist() == [True, False, False]
    summary = panel.summary.value
    assert "cancelled: 1 instance(s) were requested before the cancel" in summary
    assert "2 never were" in summary
    assert any("cancel asked" in line for line in panel.message_lines)
    assert panel.cancel_button.disabled


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
    line = line_containing(panel, "the run failed")
    assert line.startswith("error: the run failed: could not read the statuses")
    assert "Nothing was sent" in line
    assert "click Refresh, read the new plan" in line
    line = line_containing(panel, "listing the fleet after the run failed")
    assert "a simulator must still be running" in line


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
    line = line_containing(panel, "2 instance(s) failed")
    assert "refused: HTTP 403 DMS.10240306" in line
    assert panel.progress.bar_style == "danger"
    assert acted_on(sim) == []


def test_reads_that_fail_while_tracking_are_shown_not_only_logged(
    panel: Panel, sim: Simulator
) -> None:
    acted: list[bool] = []

    def reads_fail_after_the_action(call: Call, serve: Serve) -> Reply | None:
        if call.route.kind == "action":
            acted.append(True)
        elif acted:
            return Reply(503, b'{"error_code": "DMS.00500000", "error_msg": "busy"}')
        return serve()

    sim.interceptor = reads_fail_after_the_action
    panel.tracking = dmsnb.Tracking(
        timeout=0.5, settle_seconds=0.2, interval=0.05, max_interval=0.1
    )
    panel.table.selected_rows = running_positions(panel, 2)

    panel.run_button.click()
    assert panel.wait(WAIT)

    assert "HTTP 503" in line_containing(panel, "could not read")
    results = panel.results
    assert results is not None
    assert set(results["result"]) == {"failed"}
    assert results["reason"].str.startswith("timed out").all()


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
        chosen = panel.selected_ids

        panel.run_button.click()
        assert panel.wait(WAIT)

    results = panel.results
    assert results is not None
    assert list(results["instance_id"]) == chosen
    assert results["result"].value_counts().to_dict() == {
        "unknown": 100,
        "skipped": 20,
    }
    line = line_containing(panel, "failed unexpectedly")
    assert "the wire melted" in line


# -- use the result ------------------------------------------------------------


@pytest.fixture
def after_a_run(panel: Panel) -> Panel:
    panel.table.selected_rows = running_positions(panel, 2)
    panel.run_button.click()
    assert panel.wait(WAIT)
    return panel


def needs_pyarrow() -> None:
    pytest.importorskip("pyarrow", reason="Parquet export needs pyarrow")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_writes_the_merged_frame(
    after_a_run: Panel, tmp_path: Path, suffix: str
) -> None:
    if suffix == ".parquet":
        needs_pyarrow()
    target = tmp_path / f"out{suffix}"

    written = after_a_run.export(target)

    read = pd.read_csv if suffix == ".csv" else pd.read_parquet
    back = read(written)
    merged = after_a_run.merged
    assert merged is not None
    assert list(back["instance_id"]) == list(merged["instance_id"])
    assert back["result"].value_counts().to_dict() == {"success": 2}
    tags = [json.loads(text) for text in back["tags"].dropna()]
    assert tags == [tags_ for tags_ in merged["tags"].dropna()]
    assert any(pair.keys() == {"key", "value"} for pairs in tags for pair in pairs)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("results.xlsx", "must end in .csv or .parquet"),
        ("exists.csv", "exists already"),
    ],
)
def test_export_refuses_what_it_cannot_do_well(
    after_a_run: Panel, tmp_path: Path, name: str, message: str
) -> None:
    (tmp_path / "exists.csv").write_text("keep me")

    with pytest.raises(ValueError, match=message):
        after_a_run.export(tmp_path / name)

    assert (tmp_path / "exists.csv").read_text() == "keep me"


def test_export_before_any_run_says_so(panel: Panel, tmp_path: Path) -> None:
    assert panel.export_csv_button.disabled

    with pytest.raises(ValueError, match="nothing to export yet"):
        panel.export(tmp_path / "out.csv")


def test_the_export_buttons_write_into_the_chosen_folder(
    after_a_run: Panel, tmp_path: Path
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    after_a_run.export_folder.value = str(folder)

    after_a_run.export_csv_button.click()
    after_a_run.export_csv_button.click()

    written = sorted(folder.iterdir())
    assert len(written) == 2  # two clicks, two files: none overwritten
    assert all(path.name.startswith("dmsnb-restart-") for path in written)
    assert all(path.suffix == ".csv" for path in written)
    assert any(str(path) in after_a_run.export_info.value for path in written)
    assert after_a_run.message_lines[-1].startswith("info: wrote ")
    assert pd.read_csv(written[0])["result"].value_counts().to_dict() == {"success": 2}


def test_the_parquet_button_writes_a_parquet_file(
    after_a_run: Panel, tmp_path: Path
) -> None:
    needs_pyarrow()
    after_a_run.export_folder.value = str(tmp_path)

    after_a_run.export_parquet_button.click()

    [written] = tmp_path.glob("dmsnb-restart-*.parquet")
    assert str(written) in after_a_run.export_info.value
    assert len(pd.read_parquet(written)) == len(after_a_run.fleet)


def test_the_export_folder_defaults_to_the_current_folder(
    client: dmsnb.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    assert Panel(client).export_folder.value == str(tmp_path)


def test_export_problems_are_shown_with_what_to_do(
    after_a_run: Panel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    after_a_run.export_folder.value = str(tmp_path / "missing")
    after_a_run.export_csv_button.click()
    line = after_a_run.message_lines[-1]
    assert line.startswith("error: exporting CSV failed: no such folder")

    after_a_run.export_folder.value = str(tmp_path)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    after_a_run.export_parquet_button.click()
    line = after_a_run.message_lines[-1]
    assert "Parquet export needs pyarrow: pip install pyarrow" in line
    assert "install the missing package" in line


def test_the_plan_and_merged_frames_are_copies_for_the_next_cell(
    after_a_run: Panel,
) -> None:
    merged = after_a_run.merged
    plan_frame = after_a_run.plan_frame
    assert merged is not None
    assert plan_frame is not None

    merged["result"] = "changed"
    plan_frame["allowed"] = False

    again = after_a_run.merged
    assert again is not None
    assert set(again["result"].dropna()) == {"success"}
    plan = after_a_run.plan
    assert plan is not None
    assert plan.frame["allowed"].all()


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

    text = widget_text(panel.widget) + json.dumps(panel._repr_mimebundle_())
    assert len(all_widgets(panel.widget)) > 30
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
        (ImportError("no pyarrow"), "install the missing package"),
        (PermissionError("read-only"), "check that the folder exists and is writable"),
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


# -- the panel notebook, headless ------------------------------------------------


@pytest.fixture(scope="module")
def executed_panel_notebook(
    tmp_path_factory: pytest.TempPathFactory,
) -> nbformat.NotebookNode:
    """notebooks/panel.ipynb run top to bottom on this interpreter's kernel."""
    notebook = nbformat.read(NOTEBOOKS / "panel.ipynb", as_version=4)
    with notebook_kernel(tmp_path_factory.mktemp("jupyter")) as kernel_name:
        NotebookClient(
            notebook,
            kernel_name=kernel_name,
            timeout=120,
            resources={"metadata": {"path": str(tmp_path_factory.mktemp("run"))}},
        ).execute()
    return notebook


def test_the_committed_panel_notebook_has_no_outputs() -> None:
    notebook = nbformat.read(NOTEBOOKS / "panel.ipynb", as_version=4)
    nbformat.validate(notebook)

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)


def test_the_saved_panel_output_reads_without_a_kernel(
    executed_panel_notebook: nbformat.NotebookNode,
) -> None:
    assert errors(executed_panel_notebook) == []
    panels = [
        o["data"]
        for o in outputs(executed_panel_notebook)
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
        and "dmsnb panel" in o["data"].get("text/html", "")
    ]
    assert len(panels) == 1
    assert "on the SIMULATOR" in panels[0]["text/html"]
    assert panels[0]["text/plain"].startswith("<dmsnb.Panel SIMULATOR")

    saved = nbformat.writes(executed_panel_notebook)
    assert "application/vnd.jupyter.widget-state+json" in saved
    seed = re.search(r"seed=(\d+)", executed_panel_notebook.cells[1].source)
    assert seed is not None
    assert derived_keys(int(seed.group(1))).sk not in saved
    assert re.search(r"Signature=[0-9a-f]{16}", saved) is None
    for header in ("SDK-HMAC-SHA256", "X-Auth-Token"):
        assert header not in saved
