"""Runs against the real simulator: plans, waves, tracking, audit, interrupts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import dmsnb
from dmsnb import PlanError, Protection, Tracking, audit_outcomes, read_audit
from dmsnb.simulator import Simulator, Timings

TIMINGS = Timings(
    restart_seconds=0.2, delete_seconds=0.2, list_hides_deleting_after=0.1
)
FAST = Tracking(interval=0.02, max_interval=0.05, settle_seconds=0.5, timeout=5.0)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(
        instances=40, seed=5, timings=TIMINGS, failed_creations=3, errors=2
    ) as sim:
        yield sim


@pytest.fixture
def client(sim: Simulator, tmp_path: Path) -> Iterator[dmsnb.Client]:
    with sim.client(tracking=FAST, audit=tmp_path / "run.audit.jsonl") as client:
        yield client


def running_ids(client: dmsnb.Client, count: int) -> list[str]:
    fleet = client.instances()
    return list(fleet.loc[fleet["status"] == "RUNNING", "instance_id"][:count])


def acted(sim: Simulator, action: str) -> Counter[str]:
    return Counter(r.instance_id for r in sim.action_log if r.action == action)


def test_restart_follows_every_instance_until_running(
    sim: Simulator, client: dmsnb.Client
) -> None:
    ids = running_ids(client, 5)
    results = client.restart(ids)

    assert list(results["instance_id"]) == ids
    assert set(results["result"]) == {"success"}
    assert set(results["status_after"]) == {"RUNNING"}
    assert (results["duration_s"] > 0).all()
    assert acted(sim, "restart") == Counter(ids)
    assert {sim.fleet.status(i) for i in ids} == {"RUNNING"}


def test_only_the_allowed_rows_are_acted_on(
    sim: Simulator, client: dmsnb.Client
) -> None:
    fleet = client.instances(include_failed=True)
    error_ids = list(fleet.loc[fleet["status"] == "ERROR", "instance_id"])
    ids = running_ids(client, 2) + error_ids
    results = client.restart(ids).set_index("instance_id")

    for instance_id in error_ids:
        assert results.loc[instance_id, "result"] == "skipped"
        assert "only RUNNING" in results.loc[instance_id, "reason"]
    assert set(acted(sim, "restart")) == set(ids) - set(error_ids)


def test_rolling_restart_waits_for_each_wave(
    sim: Simulator, client: dmsnb.Client
) -> None:
    ids = running_ids(client, 7)
    results = client.restart(ids, wave_size=3)

    assert list(results["wave"]) == [1, 1, 1, 2, 2, 2, 3]
    assert set(results["result"]) == {"success"}
    log = [r for r in sim.action_log if r.action == "restart"]
    by_wave = {
        n: [r.time for r in log if r.instance_id in ids[(n - 1) * 3 : n * 3]]
        for n in (1, 2, 3)
    }
    settled = results.groupby("wave")["settled_at"].max()
    for n in (2, 3):
        # a wave starts only after every instance of the wave before settled
        start = min(by_wave[n])
        assert start - max(by_wave[n - 1]) >= TIMINGS.restart_seconds
        assert settled[n - 1] <= results.loc[results["wave"] == n, "requested_at"].min()


def test_rolling_restart_stops_at_the_first_failure(
    sim: Simulator, client: dmsnb.Client
) -> None:
    ids = running_ids(client, 6)
    plan = client.plan("restart", ids)
    sim.fleet.set_status(ids[1], "ERROR")  # changes under the plan ...
    with pytest.raises(PlanError, match="changed since the plan"):
        client.execute(plan, wave_size=2)
    assert acted(sim, "restart") == Counter()

    sim.fleet.set_status(ids[1], "RUNNING")
    # ... and an instance that falls to ERROR during its restart stops the run
    sim.interceptor = _error_after_restart(sim, ids[1])
    results = client.restart(ids, wave_size=2)
    by_id = results.set_index("instance_id")
    assert by_id.loc[ids[1], "result"] == "failed"
    assert "ERROR" in by_id.loc[ids[1], "reason"]
    assert list(results["result"][2:]) == ["skipped"] * 4
    assert all("earlier wave" in r for r in results["reason"][2:])
    assert set(acted(sim, "restart")) == set(ids[:2])


def _error_after_restart(sim: Simulator, instance_id: str):  # type: ignore[no-untyped-def]
    def interceptor(call, serve):  # type: ignore[no-untyped-def]
        reply = serve()
        if call.method == "POST":
            sim.fleet.set_status(instance_id, "ERROR")
        return reply

    return interceptor


def test_go_on_after_a_failure_when_told(sim: Simulator, client: dmsnb.Client) -> None:
    ids = running_ids(client, 4)
    sim.interceptor = _error_after_restart(sim, ids[0])
    results = client.restart(ids, wave_size=2, stop_on_failure=False)
    assert list(results["result"]) == ["failed", "success", "success", "success"]


def test_delete_is_done_only_when_the_instance_answers_404(
    sim: Simulator, client: dmsnb.Client
) -> None:
    ids = running_ids(client, 3)
    results = client.delete(ids, confirm=3)
    assert set(results["result"]) == {"success"}
    assert set(results["status_after"]) == {"GONE"}
    for instance_id in ids:
        with pytest.raises(dmsnb.NotFoundError):
            client.instance(instance_id)
    # The list hides a deleting instance before it is gone: tracking did not
    # take that as proof, so no instance settled before the delete time.
    assert (results["duration_s"] >= TIMINGS.delete_seconds * 0.9).all()


def test_protected_instances_are_never_deleted(
    sim: Simulator, client: dmsnb.Client
) -> None:
    fleet = client.instances()
    running = fleet[fleet["status"] == "RUNNING"].head(6)
    keep = running["name"].iloc[0]
    rule = Protection(names=[keep])
    plan = client.plan("delete", running, protect=rule)
    assert plan.count == 5

    with pytest.raises(PlanError, match="deletes 5"):
        client.execute(plan, confirm=6)
    assert acted(sim, "delete") == Counter()

    results = client.execute(plan, confirm=5)
    skipped = results[results["result"] == "skipped"]
    assert list(skipped["instance_id"]) == [running["instance_id"].iloc[0]]
    assert "protected" in skipped["reason"].iloc[0]
    assert running["instance_id"].iloc[0] not in acted(sim, "delete")


def test_dry_run_sends_no_write(sim: Simulator, client: dmsnb.Client) -> None:
    ids = running_ids(client, 3)
    before = dict(sim.requests)
    results = client.delete(ids, confirm=3, dry_run=True)
    assert set(results["result"]) == {"skipped"}
    assert all(r.startswith("dry run: would delete") for r in results["reason"])
    assert sim.action_log == ()
    writes = {
        k: v - before.get(k, 0)
        for k, v in sim.requests.items()
        if k[1] in ("action", "delete_one")
    }
    assert sum(writes.values()) == 0


def test_an_empty_plan_is_refused(sim: Simulator, client: dmsnb.Client) -> None:
    fleet = client.instances(include_failed=True)
    error_ids = list(fleet.loc[fleet["status"] == "ERROR", "instance_id"])
    with pytest.raises(PlanError, match="nothing to do"):
        client.restart(error_ids)
    assert sim.action_log == ()


def test_delete_failed_follows_each_listed_failed_creation(
    sim: Simulator, client: dmsnb.Client
) -> None:
    failed = list(
        client.instances(status="CREATEFAILED", include_failed=True)["instance_id"]
    )
    assert len(failed) == 3
    with pytest.raises(PlanError, match="pass confirm=3"):
        client.delete_failed()
    assert acted(sim, "delete") == Counter()
    results = client.delete_failed(confirm=3)
    assert sorted(results["instance_id"]) == sorted(failed)
    assert set(results["result"]) == {"success"}
    assert len(client.instances(status="CREATEFAILED", include_failed=True)) == 0


def test_a_plan_is_used_once(sim: Simulator, client: dmsnb.Client) -> None:
    ids = running_ids(client, 2)
    plan = client.plan("restart", ids)
    client.execute(plan, dry_run=True)
    assert acted(sim, "restart") == Counter()
    client.execute(plan)
    assert acted(sim, "restart") == Counter(ids)
    with pytest.raises(PlanError, match="executed already"):
        client.execute(plan)
    assert acted(sim, "restart") == Counter(ids)


def test_a_plan_from_another_project_is_refused(
    sim: Simulator, client: dmsnb.Client
) -> None:
    plan = client.plan("restart", running_ids(client, 1))
    other = dmsnb.Client(
        sim.base_url, project_id="0" * 32, ak=sim.ak, sk=sim.sk, audit=None
    )
    with pytest.raises(PlanError, match="another endpoint or project"):
        other.execute(plan)
    other.close()


def test_cancel_stops_further_waves(sim: Simulator, client: dmsnb.Client) -> None:
    ids = running_ids(client, 6)
    plan = client.plan("restart", ids)

    def cancel_once_wave_one_settled(run: dmsnb.Run) -> None:
        if run.counts()["success"] == 2:
            run.cancel()

    run = client.run(plan, wave_size=2, on_progress=cancel_once_wave_one_settled)
    results = run.start().wait(10)
    assert run.finished.is_set()
    assert list(results["result"]) == ["success"] * 2 + ["skipped"] * 4
    assert all("cancelled before wave" in r for r in results["reason"][2:])
    assert set(acted(sim, "restart")) == set(ids[:2])


def test_cancel_while_tracking_says_what_was_acted_on(
    sim: Simulator, client: dmsnb.Client
) -> None:
    ids = running_ids(client, 4)
    plan = client.plan("restart", ids)

    def cancel_once_sent(run: dmsnb.Run) -> None:
        if run.results["requested_at"].notna().any():
            run.cancel()

    run = client.run(plan, wave_size=2, on_progress=cancel_once_sent)
    results = run.start().wait(10)
    assert list(results["result"]) == ["unknown"] * 2 + ["skipped"] * 2
    assert all("tracking cancelled" in r for r in results["reason"][:2])
    assert results["requested_at"][:2].notna().all()
    assert results["requested_at"][2:].isna().all()
    assert set(acted(sim, "restart")) == set(ids[:2])


def test_an_interrupt_leaves_rows_and_audit_that_tell_every_outcome(
    sim: Simulator, client: dmsnb.Client, tmp_path: Path
) -> None:
    ids = running_ids(client, 6)
    plan = client.plan("restart", ids)

    def interrupt_while_tracking(run: dmsnb.Run) -> None:
        if run.results["requested_at"].notna().any():
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        client.execute(plan, wave_size=3, on_progress=interrupt_while_tracking)

    results = client.last_run.results  # type: ignore[union-attr]
    assert list(results["instance_id"]) == ids
    assert results["result"].notna().all()
    assert set(results["result"][:3]) == {"unknown"}
    assert set(results["result"][3:]) == {"skipped"}
    assert set(acted(sim, "restart")) == set(ids[:3])

    outcomes = audit_outcomes(tmp_path / "run.audit.jsonl")
    mine = outcomes.set_index("instance_id").loc[ids]
    assert list(mine["result"]) == list(results["result"])
    trail = read_audit(tmp_path / "run.audit.jsonl")
    end = trail[trail["kind"] == "end"].iloc[-1]
    assert "KeyboardInterrupt" in end["reason"]


def test_the_audit_trail_agrees_with_the_results(
    sim: Simulator, client: dmsnb.Client, tmp_path: Path
) -> None:
    ids = running_ids(client, 4)
    results = client.restart(ids)
    trail = read_audit(tmp_path / "run.audit.jsonl")

    kinds = list(trail.drop_duplicates(["seq"])["kind"])
    assert kinds[0] == "run"
    assert kinds.index("intent") < kinds.index("answer") < kinds.index("settled")
    assert kinds[-1] == "end"
    intents = trail[trail["kind"] == "intent"]
    assert sorted(intents["instance_id"]) == sorted(ids)
    outcomes = audit_outcomes(trail).set_index("instance_id")
    for row in results.itertuples():
        assert outcomes.loc[row.instance_id, "result"] == row.result
    assert sim.sk not in (tmp_path / "run.audit.jsonl").read_text()


def test_results_merge_back_losing_nothing(
    sim: Simulator, client: dmsnb.Client
) -> None:
    fleet = client.instances(include_failed=True)
    ids = list(fleet.loc[fleet["status"] == "RUNNING", "instance_id"][:2])
    results = client.delete(ids, confirm=2)
    merged = dmsnb.merge_results(fleet, results)
    assert len(merged) == len(fleet)
    assert list(merged.columns[: len(fleet.columns)]) == list(fleet.columns)
    pd.testing.assert_frame_equal(merged, dmsnb.merge_results(merged, results))
    assert set(merged.loc[merged["instance_id"].isin(ids), "result"]) == {"success"}


CRASHING_RUN = """
import os, sys
import dmsnb
from dmsnb.simulator import Simulator, Timings

trail = sys.argv[1]
timings = Timings(restart_seconds=0.3, delete_seconds=0.3)
with Simulator(instances=12, seed=4, timings=timings, errors=0) as sim:
    client = sim.client(audit=trail)
    ids = list(client.instances()["instance_id"][:6])
    print(",".join(ids), flush=True)

    def crash(run):
        # right after the second wave's call was answered
        if run.results["requested_at"].notna().sum() >= 4:
            os._exit(9)  # the process dies: no cleanup, no end record

    client.restart(ids, wave_size=2, on_progress=crash)
"""


def test_a_crashed_run_leaves_a_trail_that_tells_every_outcome(tmp_path: Path) -> None:
    import subprocess
    import sys

    trail = tmp_path / "crash.audit.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_RUN, str(trail)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 9, done.stderr
    ids = done.stdout.strip().split(",")

    outcomes = audit_outcomes(trail).set_index("instance_id")
    assert list(outcomes.loc[ids[:2], "result"]) == ["success", "success"]
    # the second wave's call was sent; its instances were not settled
    second = outcomes.loc[ids[2:4]]
    assert set(second["result"]) == {"unknown"}
    assert all(e.startswith(("answer", "intent")) for e in second["evidence"])
    assert list(outcomes.loc[ids[4:], "result"]) == ["skipped", "skipped"]
    assert set(outcomes.loc[ids[4:], "evidence"]) == {"plan only"}
    kinds = set(read_audit(trail)["kind"])
    assert "end" not in kinds
