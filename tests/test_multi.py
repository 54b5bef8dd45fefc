"""Several projects at once: three simulators, one stopped, one refusing keys."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import dmsnb
from dmsnb import ConfigError, PlanError, Tracking
from dmsnb._multi import MultiClient, MultiPlan
from dmsnb.simulator import Faults, Simulator, Timings

from .conftest import PROJECT_ID

TIMINGS = Timings(
    restart_seconds=0.2, delete_seconds=0.2, list_hides_deleting_after=0.1
)
FAST = Tracking(interval=0.02, max_interval=0.05, settle_seconds=0.5, timeout=5.0)
QUICK = dmsnb.RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02, total_seconds=2)
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@dataclass
class Fleet:
    sims: list[Simulator]
    down: Simulator
    down_url: str
    """Where the stopped simulator was: nothing listens there now."""
    refusing: Simulator

    def acted(self, sim: Simulator, action: str = "restart") -> Counter[str]:
        return Counter(r.instance_id for r in sim.action_log if r.action == action)

    def all_actions(self) -> int:
        return sum(len(sim.action_log) for sim in [*self.sims, self.refusing])


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    sims = [
        Simulator(instances=9, seed=seed, timings=TIMINGS, failed_creations=n).start()
        for seed, n in ((41, 1), (42, 2), (43, 0))
    ]
    down = Simulator(instances=4, seed=44, timings=TIMINGS).start()
    down_url = down.base_url
    down.stop()
    refusing = Simulator(instances=4, seed=45, timings=TIMINGS).start()
    yield Fleet(sims, down, down_url, refusing)
    for sim in [*sims, refusing]:
        sim.stop()


def client_of(sim: Simulator, **options: Any) -> dmsnb.Client:
    options.setdefault("tracking", FAST)
    options.setdefault("retry", QUICK)
    return sim.client(**options)


def multi_of(fleet: Fleet, *, broken: bool = True) -> MultiClient:
    clients = [client_of(sim) for sim in fleet.sims]
    if broken:
        # The stopped one never answers; the other refuses the signature (401).
        stopped = dmsnb.Client(
            fleet.down_url,
            project_id=fleet.down.project_id,
            ak=fleet.down.ak,
            sk=fleet.down.sk,
            audit=None,
            retry=QUICK,
        )
        wrong = dmsnb.Client(
            fleet.refusing.base_url,
            project_id=fleet.refusing.project_id,
            ak=fleet.refusing.ak,
            sk="not-the-secret-key",
            audit=None,
            retry=QUICK,
        )
        clients += [stopped, wrong]
    return MultiClient(clients)


def by_project(results: pd.DataFrame) -> dict[str, set[str]]:
    """The results that each project's instances got."""
    outcomes: dict[str, set[str]] = {}
    for project_id, result in zip(
        results["project_id"], results["result"], strict=True
    ):
        outcomes.setdefault(str(project_id), set()).add(str(result))
    return outcomes


def running(frame: pd.DataFrame, sim: Simulator, count: int) -> pd.DataFrame:
    rows: pd.DataFrame = frame[
        (frame["project_id"] == sim.project_id) & (frame["status"] == "RUNNING")
    ].head(count)
    return rows


# -- listing ---------------------------------------------------------------------


def test_every_project_is_listed_into_one_frame_with_region_and_project(
    fleet: Fleet,
) -> None:
    with multi_of(fleet) as multi:
        frame = multi.instances(include_failed=True)

    assert list(frame.columns[:3]) == ["region", "project_id", "instance_id"]
    assert Counter(frame["project_id"]) == {sim.project_id: 9 for sim in fleet.sims}
    assert set(frame["region"]) == {sim.base_url for sim in fleet.sims}
    failed = {
        entry["project_id"]: entry["error"] for entry in frame.attrs["failed_regions"]
    }
    assert set(failed) == {fleet.down.project_id, fleet.refusing.project_id}
    assert "could not connect" in failed[fleet.down.project_id]
    assert "HTTP 401 APIGW.0301" in failed[fleet.refusing.project_id]
    assert frame.attrs["summary"].startswith("27 instance(s) in 3 of 5 project(s)")
    assert "not-the-secret-key" not in repr(frame.attrs)


def test_projects_are_listed_concurrently(fleet: Fleet) -> None:
    for sim in fleet.sims:
        sim.faults = Faults(latency=0.3)
    with multi_of(fleet, broken=False) as multi:
        started = time.monotonic()
        frame = multi.instances()
        elapsed = time.monotonic() - started

    assert len(frame) == 9 * 3 - 3
    assert elapsed < 0.75  # one after another would take 0.9 s at least


def test_filters_apply_to_every_project_and_bad_ones_send_nothing(
    fleet: Fleet,
) -> None:
    with multi_of(fleet, broken=False) as multi:
        failed = multi.instances(status="CREATEFAILED", include_failed=True)
        before = sum(sim.requests.get(("GET", "list"), 0) for sim in fleet.sims)
        with pytest.raises(ValueError, match="unknown status 'RUNING'"):
            multi.instances(status="RUNING")
        after = sum(sim.requests.get(("GET", "list"), 0) for sim in fleet.sims)

    assert set(failed["status"]) == {"CREATEFAILED"}
    assert len(failed) == 3
    assert before == after


# -- a mixed restart -------------------------------------------------------------


def test_a_mixed_restart_is_routed_to_each_project_and_merged_back(
    fleet: Fleet,
) -> None:
    a, b, c = fleet.sims
    with multi_of(fleet) as multi:
        listed = multi.instances(include_failed=True)
        picked = pd.concat([running(listed, a, 2), running(listed, b, 2)])
        lost_row = pd.DataFrame(
            {"instance_id": [UNKNOWN_ID], "project_id": [fleet.down.project_id]}
        )
        selection = pd.concat([picked, lost_row], ignore_index=True)

        results = multi.restart(selection)

    assert list(results.columns[:3]) == ["region", "project_id", "instance_id"]
    assert len(results) == 5
    done = results[results["result"] == "success"]
    assert sorted(done["instance_id"]) == sorted(picked["instance_id"])
    assert (
        done["project_id"]
        == picked.set_index("instance_id")
        .loc[list(done["instance_id"]), "project_id"]
        .to_numpy()
    ).all()
    lost = results[results["instance_id"] == UNKNOWN_ID].iloc[0]
    assert lost["result"] == "skipped"
    assert "could not be listed" in lost["reason"]
    assert lost["project_id"] == fleet.down.project_id
    assert fleet.acted(a) == Counter(running(listed, a, 2)["instance_id"])
    assert fleet.acted(b) == Counter(running(listed, b, 2)["instance_id"])
    assert fleet.acted(c) == Counter()
    assert "4 success, 1 skipped" in results.attrs["summary"]
    assert "could not list" in results.attrs["summary"]


def test_bare_ids_are_looked_up_and_strangers_skipped(fleet: Fleet) -> None:
    a, b, _ = fleet.sims
    with multi_of(fleet, broken=False) as multi:
        listed = multi.instances()
        ids = [
            *running(listed, a, 1)["instance_id"],
            *running(listed, b, 1)["instance_id"],
        ]
        plan = multi.plan("restart", [*ids, UNKNOWN_ID])

    assert isinstance(plan, MultiPlan)
    assert plan.count == 2
    assert sorted(plan.instance_ids) == sorted(ids)
    stranger = plan.frame[plan.frame["instance_id"] == UNKNOWN_ID].iloc[0]
    assert not stranger["allowed"]
    assert stranger["reason"] == "not in the fleet: no such instance in any project"
    assert "2 instance(s) to act on in 2 project(s), 1 skipped" in repr(plan)


def test_an_id_in_two_projects_is_only_acted_on_by_row() -> None:
    # Two projects with the same seed hold instances with the same ids.
    sims = [
        Simulator(instances=4, seed=46, project_id=pid, timings=TIMINGS).start()
        for pid in ("a" * 32, "b" * 32)
    ]
    try:
        with MultiClient([client_of(sim) for sim in sims]) as multi:
            listed = multi.instances()
            twin = str(listed["instance_id"].iloc[0])

            by_id = multi.plan("restart", [twin])
            row = listed[
                (listed["instance_id"] == twin) & (listed["project_id"] == "b" * 32)
            ]
            results = multi.restart(row)
    finally:
        for sim in sims:
            sim.stop()

    assert by_id.count == 0
    assert "in 2 projects" in by_id.frame["reason"].iloc[0]
    assert list(results["result"]) == ["success"]
    assert [r.instance_id for r in sims[1].action_log] == [twin]
    assert sims[0].action_log == ()


def test_a_dry_run_sends_nothing_anywhere(fleet: Fleet) -> None:
    a, b, _ = fleet.sims
    with multi_of(fleet, broken=False) as multi:
        listed = multi.instances()
        selection = pd.concat([running(listed, a, 2), running(listed, b, 1)])
        results = multi.restart(selection, dry_run=True)

    assert set(results["result"]) == {"skipped"}
    assert set(results["reason"]) == {"dry run: would restart"}
    assert fleet.all_actions() == 0


# -- one project after another ---------------------------------------------------


def test_projects_run_one_after_another(fleet: Fleet) -> None:
    a, b, c = fleet.sims
    with multi_of(fleet, broken=False) as multi:
        listed = multi.instances()
        selection = pd.concat([running(listed, sim, 2) for sim in (a, b, c)])
        results = multi.restart(selection)

    assert set(results["result"]) == {"success"}
    spans = results.groupby("project_id").agg(
        start=("requested_at", "min"), end=("settled_at", "max")
    )
    ordered = spans.loc[[a.project_id, b.project_id, c.project_id]]
    assert (
        ordered["start"].iloc[1:].to_numpy() >= ordered["end"].iloc[:-1].to_numpy()
    ).all()


def test_a_failing_project_stops_the_next_ones(fleet: Fleet) -> None:
    a, b, _ = fleet.sims
    a.faults = Faults(restart_error_rate=1.0)
    with multi_of(fleet, broken=False) as multi:
        listed = multi.instances()
        selection = pd.concat([running(listed, a, 1), running(listed, b, 2)])
        results = multi.restart(selection)

    outcomes = by_project(results)
    assert outcomes[a.project_id] == {"failed"}
    assert outcomes[b.project_id] == {"skipped"}
    reasons = results.loc[results["project_id"] == b.project_id, "reason"]
    assert reasons.str.startswith(f"not started: {a.base_url}").all()
    assert b.action_log == ()


def test_without_stop_on_failure_the_next_projects_still_run(fleet: Fleet) -> None:
    a, b, _ = fleet.sims
    a.faults = Faults(restart_error_rate=1.0)
    with multi_of(fleet, broken=False) as multi:
        listed = multi.instances()
        selection = pd.concat([running(listed, a, 1), running(listed, b, 2)])
        results = multi.restart(selection, stop_on_failure=False)

    assert Counter(results["result"]) == {"failed": 1, "success": 2}
    assert len(b.action_log) == 2


def test_a_plan_that_went_stale_anywhere_sends_nothing_anywhere(
    fleet: Fleet,
) -> None:
    a, b, _ = fleet.sims
    with multi_of(fleet, broken=False) as multi:
        listed = multi.instances()
        selection = pd.concat([running(listed, a, 2), running(listed, b, 1)])
        plan = multi.plan("restart", selection)
        changed = str(running(listed, b, 1)["instance_id"].iloc[0])
        multi.client_for(b.project_id).delete([changed], confirm=1, track=False)

        with pytest.raises(PlanError, match="Nothing was sent to any project"):
            multi.execute(plan)

    assert a.action_log == ()
    assert [r.instance_id for r in b.action_log] == [changed]  # only our own


def test_a_project_that_went_stale_during_the_run_stops_the_next(
    fleet: Fleet,
) -> None:
    a, b, c = fleet.sims
    with multi_of(fleet, broken=False) as multi:
        listed = multi.instances()
        selection = pd.concat([running(listed, sim, 1) for sim in (a, b, c)])
        changed = str(running(listed, b, 1)["instance_id"].iloc[0])
        meddled: list[str] = []

        def meddle_with_b(run: dmsnb.Run) -> None:
            if run.client.project_id == a.project_id and not meddled:
                meddled.append(changed)
                b_client = multi.client_for(b.project_id)
                b_client.delete([changed], confirm=1, track=False)

        results = multi.restart(selection, on_progress=meddle_with_b)

    outcomes = by_project(results)
    assert outcomes == {
        a.project_id: {"success"},
        b.project_id: {"skipped"},
        c.project_id: {"skipped"},
    }
    b_reason = results.loc[results["project_id"] == b.project_id, "reason"].iloc[0]
    c_reason = results.loc[results["project_id"] == c.project_id, "reason"].iloc[0]
    assert b_reason.startswith("not started: ") and changed in b_reason
    where = f"{b.base_url} ({b.project_id})"
    assert c_reason == f"not started: {where} refused the plan (stop_on_failure)"
    assert c.action_log == ()
    assert "not run in" in results.attrs["summary"]


def test_an_interrupt_keeps_every_row(fleet: Fleet) -> None:
    a, b, c = fleet.sims
    calls = {"n": 0}

    def interrupt_in_the_second_project(run: dmsnb.Run) -> None:
        if run.client.project_id == b.project_id:
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt

    with multi_of(fleet, broken=False) as multi:
        listed = multi.instances()
        selection = pd.concat([running(listed, sim, 2) for sim in (a, b, c)])
        with pytest.raises(KeyboardInterrupt):
            multi.restart(selection, on_progress=interrupt_in_the_second_project)
        results = multi.last_results

    assert results is not None and len(results) == 6
    outcomes = by_project(results)
    assert outcomes[a.project_id] == {"success"}
    assert outcomes[b.project_id] <= {"unknown", "success"}
    assert "unknown" in outcomes[b.project_id]
    assert outcomes[c.project_id] == {"skipped"}
    assert c.action_log == ()


# -- deletes ---------------------------------------------------------------------


def test_a_delete_is_confirmed_with_the_total_count(fleet: Fleet) -> None:
    a, b, _ = fleet.sims
    with multi_of(fleet, broken=False) as multi:
        listed = multi.instances()
        selection = pd.concat([running(listed, a, 2), running(listed, b, 1)])
        plan = multi.plan("delete", selection)

        for wrong in (None, 2, 1, True):
            with pytest.raises(PlanError, match="3"):
                multi.execute(plan, confirm=wrong)
        assert fleet.all_actions() == 0

        results = multi.execute(plan, confirm=3)

    assert set(results["result"]) == {"success"}
    assert len(a.action_log) == 2 and len(b.action_log) == 1
    assert all(a.fleet.show(i) is None for i in running(listed, a, 2)["instance_id"])


def test_failed_creations_are_removed_in_every_project(fleet: Fleet) -> None:
    with multi_of(fleet) as multi:
        for wrong in (None, 4):
            with pytest.raises(PlanError, match="3"):
                multi.delete_failed(confirm=wrong)
        with pytest.raises(PlanError, match=r"deletes 3 instance\(s\) in all"):
            multi.delete_failed(confirm=4)
        assert fleet.all_actions() == 0
        results = multi.delete_failed(confirm=3)
        again = multi.delete_failed()

    assert Counter(results["result"]) == {"success": 3}
    assert set(results["status_before"]) == {"CREATEFAILED"}
    assert len(results.attrs["failed_regions"]) == 2
    assert again.empty
    assert again.attrs["summary"].startswith("delete_failed: no instance")


def test_protection_rules_see_the_region(fleet: Fleet) -> None:
    a, b, _ = fleet.sims
    keep_b = dmsnb.Protection(
        predicate=lambda row: row["project_id"] == b.project_id, label="project b"
    )
    with multi_of(fleet, broken=False) as multi:
        listed = multi.instances()
        selection = pd.concat([running(listed, a, 1), running(listed, b, 1)])
        plan = multi.plan("delete", selection, protect=keep_b)

    assert plan.count == 1
    kept = plan.frame[plan.frame["project_id"] == b.project_id].iloc[0]
    assert kept["reason"] == "protected: project b"


# -- frames ----------------------------------------------------------------------


def test_results_merge_back_into_the_fleet_by_project_and_id(fleet: Fleet) -> None:
    a, _, c = fleet.sims
    with multi_of(fleet, broken=False) as multi:
        listed = multi.instances()
        results = multi.restart(
            pd.concat([running(listed, a, 1), running(listed, c, 1)])
        )
        merged = multi.merge_results(listed, results)

    assert len(merged) == len(listed)
    assert list(merged["instance_id"]) == list(listed["instance_id"])
    assert merged["result"].notna().sum() == 2
    assert merged["region"].notna().all()
    assert len(listed.columns) + len(results.columns) - 3 == len(merged.columns)


def test_a_given_fleet_is_used_without_listing_again(fleet: Fleet) -> None:
    a, _, _ = fleet.sims
    with multi_of(fleet) as multi:
        listed = multi.instances(include_failed=True)
        before = a.requests.get(("GET", "list"), 0)
        plan = multi.plan("restart", running(listed, a, 1), fleet=listed)

    assert a.requests.get(("GET", "list"), 0) == before
    assert plan.count == 1
    assert set(plan.failures) == {fleet.down.project_id, fleet.refusing.project_id}


# -- building one ----------------------------------------------------------------


def test_a_project_given_twice_is_refused(fleet: Fleet) -> None:
    a = fleet.sims[0]
    with pytest.raises(ConfigError, match="given twice"):
        MultiClient([client_of(a), client_of(a)])
    with pytest.raises(ConfigError, match="at least one"):
        MultiClient([])


def test_one_key_pair_for_several_regions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "HPUAMULTI00000000001")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "multi-secret")
    monkeypatch.delenv("DMSNB_PROFILE", raising=False)
    projects = {"eu-de": PROJECT_ID, "eu-nl": "2" * 32}

    with MultiClient.from_regions(projects, audit=None) as multi:
        places = [(c.region, c.endpoint, c.project_id) for c in multi.clients]
        text = repr(multi)

    assert places == [
        ("eu-de", "https://dms.eu-de.otc.t-systems.com", PROJECT_ID),
        ("eu-nl", "https://dms.eu-nl.otc.t-systems.com", "2" * 32),
    ]
    assert "multi-secret" not in text and "eu-nl/22222222" in text


def test_profiles_make_one_client_each(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    a = fleet.sims[0]
    clouds = tmp_path / "clouds.yaml"
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    for name in ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "DMSNB_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with Simulator(instances=5, seed=47, password="multi-pw", timings=TIMINGS) as p:
        entries: dict[str, Any] = {}
        for written in (
            a.write_clouds_yaml(tmp_path / "a.yaml", cloud="keys-a", auth="aksk"),
            p.write_clouds_yaml(tmp_path / "p.yaml", cloud="password-p"),
        ):
            entries.update(json.loads(written.read_text())["clouds"])
        clouds.write_text(json.dumps({"clouds": entries}))

        with MultiClient.from_profiles(["keys-a", "password-p"], audit=None) as multi:
            listed = multi.instances(include_failed=True)
            kinds = [c.credentials.kind for c in multi.clients]

    assert Counter(listed["project_id"]) == {a.project_id: 9, p.project_id: 5}
    assert kinds == ["AK/SK", "IAM token (password)"]
