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
from dmsnb.simulator import Faults, Simulator, Timings, check_results

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
    "delete_failed": ("delete", lambda c, ids: c.delete_failed(confirm=len(ids))),
}


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

        check = check_results(sim, action, ids, results)
        acted = Counter(r.instance_id for r in sim.action_log if r.action == action)
        client.close()

    # the fault really happened (where it can touch this operation)
    if (fault, operation) not in NOT_APPLICABLE:
        assert sum(injected[k] for k in COUNTERS[fault]) > 0, injected
    # exactly one row per requested instance, nothing outside the selection
    assert check.lost == 0
    assert results["result"].isin(["success", "failed", "skipped", "unknown"]).all()
    assert set(acted) <= set(ids)
    # nothing acted on twice, and each result matches the simulator's truth
    assert check.acted_twice == 0
    assert check.wrong == []
    # the audit trail tells the same story
    outcomes = audit_outcomes(trail).set_index("instance_id")["result"]
    assert {i: outcomes[i] for i in ids} == dict(
        zip(results["instance_id"], results["result"], strict=True)
    )
    # faults that leave every outcome decidable leave no unknown
    assert check.unknown == 0, results[["result", "reason"]]
