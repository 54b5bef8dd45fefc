"""Every fault of the simulator against every batch operation.

For each run: every requested instance has exactly one result row, no
instance received an action twice, each result agrees with what the
simulator actually did, and the audit trail agrees with the results.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

import dmsnb
from dmsnb import Tracking, audit_outcomes
from dmsnb.simulator import Faults, Simulator, Timings

TIMINGS = Timings(
    restart_seconds=0.15, delete_seconds=0.15, list_hides_deleting_after=0.05
)
TRACKING = Tracking(interval=0.02, max_interval=0.05, settle_seconds=0.4, timeout=2.0)
RETRY = dmsnb.RetryPolicy(
    base_delay=0.005, max_delay=0.02, total_seconds=10, max_retry_after=0.05
)

FAULTS: dict[str, Faults] = {
    "latency": Faults(seed=1, latency=0.01),
    "server_errors": Faults(seed=2, server_error_rate=0.3),
    "rate_limit": Faults(
        seed=3, rate_limit_rate=0.2, rate_limit_burst=3, retry_after=0.02
    ),
    "resets": Faults(seed=4, reset_rate=0.3),
    "cut_bodies": Faults(seed=5, truncate_rate=0.3),
    "garbage_bodies": Faults(seed=6, garbage_rate=0.3),
    "failed_results": Faults(seed=7, failed_result_rate=0.3),
    "lost_answers": Faults(seed=14, lost_answer_rate=0.6),
    "stuck": Faults(seed=9, stuck_rate=0.3, delete_stuck_rate=0.3),
    "fall_to_error": Faults(
        seed=10, restart_error_rate=0.3, delete_error_blip_rate=0.5
    ),
}

COUNTERS: dict[str, tuple[str, ...]] = {
    "latency": ("latency",),
    "server_errors": ("server_error",),
    "rate_limit": ("rate_limit",),
    "resets": ("reset",),
    "cut_bodies": ("truncate",),
    "garbage_bodies": ("garbage",),
    "failed_results": ("failed_result",),
    "lost_answers": ("lost_answer",),
    "stuck": ("stuck", "delete_stuck"),
    "fall_to_error": ("restart_error", "delete_error_blip"),
}
# The all-failure call names no instances (no per-instance results), and
# failed creations vanish at once (no stuck or passing ERROR state).
NOT_APPLICABLE = {
    ("failed_results", "delete_failed"),
    ("stuck", "delete_failed"),
    ("fall_to_error", "delete_failed"),
}

Operation = Callable[[dmsnb.Client, list[str]], pd.DataFrame]

OPERATIONS: dict[str, tuple[str, Operation]] = {
    "restart": ("restart", lambda c, ids: c.restart(ids)),
    "rolling_restart": (
        "restart",
        lambda c, ids: c.restart(ids, wave_size=3, stop_on_failure=False),
    ),
    "delete": ("delete", lambda c, ids: c.delete(ids, confirm=len(ids))),
    "delete_failed": ("delete", lambda c, ids: c.delete_failed()),
}


def truth_agrees(
    result: str, action: str, times_acted: int, status_now: str | None
) -> bool:
    """Whether a result row says what the simulator really did."""
    settled_ok = (
        status_now == "RUNNING"
        if action == "restart"
        else status_now in (None, "RECYCLE")
    )
    if result == "success":
        return times_acted == 1 and settled_ok
    if result == "skipped":
        return times_acted == 0
    if result == "failed":
        # refused / not acted, or acted and never reached the settled state
        return times_acted == 0 or not settled_ok
    return result == "unknown"


@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_matrix(fault: str, operation: str, tmp_path: Path) -> None:
    trail = tmp_path / "matrix.audit.jsonl"
    with Simulator(
        instances=30, seed=21, timings=TIMINGS, failed_creations=6, errors=1
    ) as sim:
        client = sim.client(tracking=TRACKING, retry=RETRY, audit=trail)
        fleet = client.instances(include_failed=True)
        if operation == "delete_failed":
            ids = list(fleet.loc[fleet["status"] == "CREATEFAILED", "instance_id"])
        else:
            ids = list(fleet.loc[fleet["status"] == "RUNNING", "instance_id"][:10])
        action, run = OPERATIONS[operation]

        sim.faults = FAULTS[fault]
        results = run(client, ids)
        sim.faults = Faults()
        injected = dict(sim.fault_counts)

        statuses = {i: sim.fleet.status(i) for i in ids}
        acted = Counter(r.instance_id for r in sim.action_log if r.action == action)
        client.close()

    # the fault really happened (where it can touch this operation)
    if (fault, operation) not in NOT_APPLICABLE:
        assert sum(injected[k] for k in COUNTERS[fault]) > 0, injected
    # exactly one row per requested instance
    assert sorted(results["instance_id"]) == sorted(ids)
    assert results["instance_id"].is_unique
    assert results["result"].isin(["success", "failed", "skipped", "unknown"]).all()
    # nothing acted on twice, nothing outside the selection
    assert all(n == 1 for n in acted.values()), acted
    assert set(acted) <= set(ids)
    # each result matches the simulator's truth
    wrong = [
        (
            row.instance_id,
            row.result,
            acted[row.instance_id],
            statuses[row.instance_id],
            row.reason,
        )
        for row in results.itertuples()
        if not truth_agrees(
            row.result, action, acted[row.instance_id], statuses[row.instance_id]
        )
    ]
    assert wrong == []
    # the audit trail tells the same story
    outcomes = audit_outcomes(trail).set_index("instance_id")["result"]
    assert {i: outcomes[i] for i in ids} == dict(
        zip(results["instance_id"], results["result"], strict=True)
    )
    # faults that leave every outcome decidable leave no unknown
    assert (results["result"] == "unknown").sum() == 0, results[["result", "reason"]]
