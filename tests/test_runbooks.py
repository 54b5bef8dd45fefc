"""The runbooks run headless with papermill and report what really happened.

Each runbook is executed against a simulator the test started, reached the
way a real project is: ``endpoint`` and ``project_id`` as parameters, the
keys in the official SDK's environment variables (never as parameters). The
test then reads the executed notebook (its outcome record and its text) and
holds it against the simulator's own record of requests and actions, and
checks that no key or signature appears in any executed notebook or in the
audit trail.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest

import dmsnb
from dmsnb.cli import OUTCOME_MIME
from dmsnb.simulator import Faults, Simulator, Timings, check_results, derived_keys

from .notebook_kernel import NOTEBOOKS, cell_text, notebook_kernel, output_text, outputs

pytestmark = pytest.mark.notebook

RUNBOOKS = {
    "rolling-restart": "runbook-rolling-restart.ipynb",
    "cleanup-failed": "runbook-cleanup-failed.ipynb",
    "delete": "runbook-delete.ipynb",
    "fleet-report": "fleet-report.ipynb",
}
ACTIONS = ("rolling-restart", "cleanup-failed", "delete")
CONNECTION = ("simulator", "profile", "region", "endpoint", "project_id")
SEED = 11
FAST = {"poll_seconds": 0.1, "timeout_seconds": 20.0}


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with notebook_kernel(tmp_path_factory.mktemp("jupyter")) as name:
        yield name


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    """A simulator with 3 failed creations, its keys in the SDK's variables."""
    simulator = Simulator(
        instances=30,
        seed=SEED,
        failed_creations=3,
        errors=2,
        timings=Timings(restart_seconds=0.3, delete_seconds=0.3),
    )
    with simulator:
        for name in list(os.environ):
            if name.startswith(("HUAWEICLOUD_SDK_", "OS_")) or name == "DMSNB_PROFILE":
                monkeypatch.delenv(name)
        monkeypatch.setenv("HUAWEICLOUD_SDK_AK", simulator.ak)
        monkeypatch.setenv("HUAWEICLOUD_SDK_SK", simulator.sk)
        yield simulator


class Executed:
    """An executed runbook: the notebook, its error if it failed, its outcome."""

    def __init__(self, path: Path, error: papermill.PapermillExecutionError | None):
        self.path = path
        self.notebook = nbformat.read(path, as_version=4)
        self.error = error
        self.text = output_text(self.notebook)

    @property
    def outcome(self) -> dict[str, Any]:
        data = [o.get("data", {}) for o in outputs(self.notebook)]
        records = [d[OUTCOME_MIME] for d in data if OUTCOME_MIME in d]
        assert len(records) == 1, "the runbook recorded no outcome"
        record: dict[str, Any] = records[0]
        return record


def run(
    kernel: str, runbook: str, folder: Path, sim: Simulator | None, **parameters: Any
) -> Executed:
    """Execute a runbook in ``folder`` against ``sim``; check it shows no secret."""
    if sim is not None:
        parameters.setdefault("endpoint", sim.base_url)
        parameters.setdefault("project_id", sim.project_id)
    output = folder / f"{runbook}.out.ipynb"
    error = None
    try:
        papermill.execute_notebook(
            str(NOTEBOOKS / RUNBOOKS[runbook]),
            str(output),
            parameters=parameters,
            kernel_name=kernel,
            progress_bar=False,
            cwd=str(folder),
        )
    except papermill.PapermillExecutionError as failure:
        error = failure
    executed = Executed(output, error)
    if sim is not None:
        assert_no_secret(executed.path, sim)
        assert_no_secret(folder / "dmsnb.audit.jsonl", sim)
    return executed


def assert_no_secret(path: Path, sim: Simulator) -> None:
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    assert sim.sk not in text
    assert sim.ak not in text
    assert re.search(r"Signature=[0-9a-f]{16}", text) is None
    for header in ("SDK-HMAC-SHA256", "X-Auth-Token", "X-Security-Token"):
        assert header not in text


def writes(sim: Simulator) -> int:
    return sum(n for (method, _), n in sim.requests.items() if method != "GET")


def record(sim: Simulator, instance_id: str) -> dict[str, Any]:
    found = sim.fleet.show(instance_id)
    assert found is not None
    return found


def tag(sim: Simulator, instance_id: str, key: str) -> str | None:
    tags = {t["key"]: t["value"] for t in record(sim, instance_id).get("tags", [])}
    return tags.get(key)


def deletable(sim: Simulator, count: int) -> list[str]:
    """``count`` RUNNING instances that no default protection rule covers."""
    ids = [
        i
        for i in sim.fleet.ids("RUNNING")
        if tag(sim, i, "env") != "prod" and "-prod-" not in record(sim, i)["name"]
    ]
    assert len(ids) >= count
    return ids[:count]


def protected(sim: Simulator) -> str:
    return next(i for i in sim.fleet.ids("RUNNING") if tag(sim, i, "env") == "prod")


# -- the notebooks as committed ------------------------------------------------


@pytest.mark.parametrize("runbook", RUNBOOKS)
def test_each_runbook_declares_its_parameters_for_papermill(runbook: str) -> None:
    path = NOTEBOOKS / RUNBOOKS[runbook]
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assigned = re.findall(r"^(\w+) = ", tagged[0].source, re.MULTILINE)

    declared = papermill.inspect_notebook(str(path))

    assert len(tagged) == 1
    assert list(declared) == assigned  # papermill reads every line
    assert set(CONNECTION) | {"audit_path"} <= set(declared)
    assert declared["simulator"]["default"] == "False"
    if runbook in ACTIONS:
        assert declared["dry_run"]["default"] == "True"
    for name in declared:
        dmsnb.cli.refuse_secrets([name])  # no parameter is a secret
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


# -- safe without parameters ---------------------------------------------------


NO_CREDENTIALS = "no credentials found"
WITHOUT = [
    # runbook, parameters, the first thing it says is missing
    ("rolling-restart", {}, "select the instances"),
    ("rolling-restart", {"select_all": True}, NO_CREDENTIALS),
    ("cleanup-failed", {}, NO_CREDENTIALS),
    ("delete", {}, "give the ids to delete"),
    ("fleet-report", {}, NO_CREDENTIALS),
]


@pytest.mark.parametrize(("runbook", "parameters", "message"), WITHOUT)
def test_without_parameters_or_credentials_a_runbook_stops_and_says_why(
    runbook: str,
    parameters: dict[str, Any],
    message: str,
    kernel: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith(("HUAWEICLOUD_SDK_", "OS_")) or name == "DMSNB_PROFILE":
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(Path.home() / ".cache"))
    monkeypatch.setenv("HOME", str(tmp_path))  # no credentials file, no clouds.yaml

    executed = run(kernel, runbook, tmp_path, None, **parameters)

    assert executed.error is not None
    assert executed.error.ename == "ParameterError"
    assert message in executed.error.evalue
    if message == NO_CREDENTIALS:
        assert "simulator = True" in executed.error.evalue
    assert not (tmp_path / "dmsnb.audit.jsonl").exists()


# -- dry runs ------------------------------------------------------------------


def dry_run_parameters(runbook: str, sim: Simulator) -> tuple[dict[str, Any], int]:
    """Parameters for a dry run of ``runbook``, and how many it would act on."""
    if runbook == "rolling-restart":
        return {"status": "RUNNING", "wave_size": 3}, len(sim.fleet.ids("RUNNING"))
    if runbook == "cleanup-failed":
        return {}, 3
    ids = [*deletable(sim, 3), protected(sim)]
    return {"ids": ids}, 3


@pytest.mark.parametrize("runbook", ACTIONS)
def test_a_dry_run_plans_shows_and_sends_no_write(
    runbook: str, kernel: str, tmp_path: Path, sim: Simulator
) -> None:
    parameters, planned = dry_run_parameters(runbook, sim)

    executed = run(kernel, runbook, tmp_path, sim, **parameters)

    assert executed.error is None, executed.error
    outcome = executed.outcome
    assert outcome["dry_run"] is True
    assert outcome["planned"] == planned
    assert outcome["counts"]["success"] == 0
    assert outcome["counts"]["skipped"] == outcome["instances"]
    assert "DRY RUN: nothing will be sent" in executed.text
    assert f"dry run: nothing was sent; {planned} instance(s) would be" in executed.text
    assert sim.action_log == ()
    assert writes(sim) == 0
    trail = dmsnb.audit_outcomes(tmp_path / "dmsnb.audit.jsonl")
    assert set(trail["result"]) == {"skipped"}


# -- real runs -----------------------------------------------------------------


def test_a_rolling_restart_goes_wave_by_wave_and_reports_each_instance(
    kernel: str, tmp_path: Path, sim: Simulator
) -> None:
    running = sim.fleet.ids("RUNNING")
    ids = running[:5]

    executed = run(
        kernel,
        "rolling-restart",
        tmp_path,
        sim,
        ids=ids,
        wave_size=2,
        dry_run=False,
        **FAST,
    )

    assert executed.error is None, executed.error
    outcome = executed.outcome
    assert outcome["counts"] == {"success": 5, "failed": 0, "skipped": 0, "unknown": 0}
    assert [r.instance_id for r in sim.action_log] == ids
    assert all(sim.fleet.status(i) == "RUNNING" for i in ids)
    log = cell_text(executed.notebook, "run")
    assert log.index("wave 1:") < log.index("wave 2:") < log.index("wave 3:")
    trail = dmsnb.audit_outcomes(tmp_path / "dmsnb.audit.jsonl")
    check = check_results(sim, "restart", ids, trail)
    assert check.clean and check.unknown == 0, check
    assert "restart: 5 instance(s), 5 success" in executed.text


def test_a_failed_restart_stops_the_waves_and_fails_the_run(
    kernel: str, tmp_path: Path, sim: Simulator
) -> None:
    sim.faults = Faults(restart_error_rate=1.0)
    ids = sim.fleet.ids("RUNNING")[:3]

    executed = run(
        kernel,
        "rolling-restart",
        tmp_path,
        sim,
        ids=ids,
        wave_size=1,
        dry_run=False,
        **FAST,
    )

    assert executed.error is not None
    assert executed.error.ename == "InstancesFailed"
    assert ids[0] in executed.error.evalue
    outcome = executed.outcome
    assert outcome["failed"] == [ids[0]]
    assert outcome["counts"]["skipped"] == 2
    assert [r.instance_id for r in sim.action_log] == [ids[0]]
    assert "not started: " in cell_text(executed.notebook, "merged")


def test_cleanup_deletes_every_failed_creation_once_confirmed(
    kernel: str, tmp_path: Path, sim: Simulator
) -> None:
    failed = sim.fleet.ids("CREATEFAILED")

    executed = run(
        kernel, "cleanup-failed", tmp_path, sim, dry_run=False, expected_count=3, **FAST
    )

    assert executed.error is None, executed.error
    assert executed.outcome["counts"]["success"] == 3
    assert sorted(r.instance_id for r in sim.action_log) == sorted(failed)
    assert {r.via for r in sim.action_log} == {"all_failure"}
    assert sim.fleet.ids("CREATEFAILED") == []


def test_cleanup_by_filter_deletes_only_failed_creations(
    kernel: str, tmp_path: Path, sim: Simulator
) -> None:
    failed = sim.fleet.ids("CREATEFAILED")[0]
    running = sim.fleet.ids("RUNNING")[0]

    executed = run(
        kernel,
        "cleanup-failed",
        tmp_path,
        sim,
        ids=[failed, running],
        dry_run=False,
        expected_count=1,
        **FAST,
    )

    assert executed.error is None, executed.error
    assert [r.instance_id for r in sim.action_log] == [failed]
    assert "protected: not a failed creation" in cell_text(executed.notebook, "plan")
    assert sim.fleet.status(running) == "RUNNING"


def test_delete_removes_the_listed_ids_and_never_a_protected_one(
    kernel: str, tmp_path: Path, sim: Simulator
) -> None:
    doomed = deletable(sim, 3)
    prod = protected(sim)
    ids_file = tmp_path / "decommission.txt"
    ids_file.write_text("# reviewed list\n" + "\n".join([*doomed, prod]) + "\n")

    executed = run(
        kernel,
        "delete",
        tmp_path,
        sim,
        ids_file=str(ids_file),
        dry_run=False,
        expected_count=3,
        **FAST,
    )

    assert executed.error is None, executed.error
    outcome = executed.outcome
    assert outcome["counts"] == {"success": 3, "failed": 0, "skipped": 1, "unknown": 0}
    assert sorted(r.instance_id for r in sim.action_log) == sorted(doomed)
    assert sim.fleet.status(prod) == "RUNNING"
    assert "protected: tag env=prod" in cell_text(executed.notebook, "merged")
    trail = dmsnb.audit_outcomes(tmp_path / "dmsnb.audit.jsonl")
    check = check_results(sim, "delete", [*doomed, prod], trail)
    assert check.clean and check.unknown == 0, check


# -- bad parameters ------------------------------------------------------------


def bad(
    runbook: str, parameters: dict[str, Any], message: str, *, read: bool = False
) -> Any:
    """A row: the runbook, its parameters, what the message says, and whether
    the fleet was read before the check (no parameter check sends anything)."""
    return pytest.param(runbook, parameters, message, read, id=message[:40])


BAD_PARAMETERS = [
    bad("rolling-restart", {"status": "RUNNIN"}, "unknown status 'RUNNIN'"),
    bad("rolling-restart", {"select_all": True, "wave_size": 0}, "the wave size"),
    bad("delete", {"ids_file": "missing.txt"}, "cannot read the ids file"),
    bad(
        "delete",
        {"ids": "TWO", "dry_run": False, "expected_count": 3},
        "expected_count 3 does not match: the list holds 2 id(s)",
    ),
    bad("cleanup-failed", {"dry_run": False}, "deleting needs expected_count"),
    bad(
        "cleanup-failed",
        {"dry_run": False, "expected_count": 2},
        "count 2 does not match the plan, which deletes 3 instance(s)",
        read=True,
    ),
    bad("fleet-report", {"sk": "a-secret-value"}, "never pass a key, token or"),
]


@pytest.mark.parametrize(("runbook", "parameters", "message", "read"), BAD_PARAMETERS)
def test_a_bad_parameter_stops_the_runbook_before_anything_is_sent(
    runbook: str,
    parameters: dict[str, Any],
    message: str,
    read: bool,
    kernel: str,
    tmp_path: Path,
    sim: Simulator,
) -> None:
    given = dict(parameters)
    if given.get("ids") == "TWO":
        given["ids"] = deletable(sim, 2)

    executed = run(kernel, runbook, tmp_path, sim, **given)

    assert executed.error is not None
    assert executed.error.ename == "ParameterError"
    assert message in executed.error.evalue
    assert sim.action_log == ()
    assert writes(sim) == 0
    assert bool(sim.requests) is read  # the checks before connecting send nothing


# -- the fleet report ----------------------------------------------------------


def test_the_fleet_report_counts_the_fleet_and_what_changed_since_the_trail(
    kernel: str, tmp_path: Path, sim: Simulator
) -> None:
    restarted = sim.fleet.ids("RUNNING")[:2]
    run(kernel, "rolling-restart", tmp_path, sim, ids=restarted, dry_run=False, **FAST)
    first = run(kernel, "fleet-report", tmp_path, sim)
    sim.fleet.set_status(restarted[0], "ERROR")
    writes_before = writes(sim)

    second = run(kernel, "fleet-report", tmp_path, sim)

    for executed in (first, second):
        assert executed.error is None, executed.error
    statuses = list(sim.fleet.statuses().values())
    assert second.outcome["by_status"] == {s: statuses.count(s) for s in statuses}
    assert second.outcome["fleet"] == 30
    assert "1 run(s) in the trail" in cell_text(first.notebook, "trail")
    assert first.outcome["flagged"] == []
    assert "no earlier report in the trail" in cell_text(first.notebook, "since")
    assert second.outcome["flagged"] == [restarted[0]]
    assert "restarted, but ERROR now" in cell_text(second.notebook, "trail-now")
    assert second.outcome["changes"] == [
        {
            "instance_id": restarted[0],
            "change": "status",
            "before": "RUNNING",
            "now": "ERROR",
        }
    ]
    pictures = [o for o in outputs(second.notebook) if "image/png" in o.get("data", {})]
    assert len(pictures) == 1
    for dimension in ("status", "engine version", "specification", "age", "region"):
        assert f"By {dimension}:" in second.text
    assert writes(sim) == writes_before  # the report sends no write
    trail = (tmp_path / "dmsnb.audit.jsonl").read_text().splitlines()
    assert [json.loads(line)["kind"] for line in trail].count("report") == 2


def test_the_fleet_report_runs_on_its_own_simulator(
    kernel: str, tmp_path: Path
) -> None:
    executed = run(kernel, "fleet-report", tmp_path, None, simulator=True)

    assert executed.error is None, executed.error
    keys = derived_keys(7)  # the runbook's own simulator
    everything = executed.path.read_text()
    assert keys.sk not in everything and keys.ak not in everything
    outcome = executed.outcome
    assert outcome["simulator"] is True
    assert outcome["fleet"] == 30
    assert outcome["simulator_writes"] == 0
    assert "<dmsnb.Client SIMULATOR" in executed.text
