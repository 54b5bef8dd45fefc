from __future__ import annotations

import pandas as pd
import pytest

from dmsnb.simulator import Simulator, Timings, check_results
from dmsnb.simulator._truth import agrees


@pytest.mark.parametrize(
    ("result", "action", "times", "status", "expected"),
    [
        ("success", "restart", 1, "RUNNING", True),
        ("success", "restart", 0, "RUNNING", False),
        ("success", "restart", 2, "RUNNING", False),
        ("success", "restart", 1, "RESTARTING", False),
        ("success", "delete", 1, None, True),
        ("success", "delete", 1, "RECYCLE", True),
        ("success", "delete", 1, "DELETING", False),
        ("failed", "restart", 0, "RUNNING", True),
        ("failed", "restart", 1, "ERROR", True),
        ("failed", "restart", 1, "RUNNING", False),
        ("failed", "delete", 1, None, False),
        ("skipped", "delete", 0, "RUNNING", True),
        ("skipped", "delete", 1, None, False),
        ("unknown", "restart", 1, "RUNNING", True),
        ("unknown", "restart", 0, "RUNNING", True),
    ],
)
def test_agrees(
    result: str, action: str, times: int, status: str | None, expected: bool
) -> None:
    assert agrees(result, action, times, status) is expected


def test_check_results_catches_lies() -> None:
    timings = Timings(
        restart_seconds=0.0, delete_seconds=0.0, list_hides_deleting_after=0.0
    )
    with Simulator(
        instances=6, seed=2, timings=timings, failed_creations=0, errors=0
    ) as sim:
        ids = sim.fleet.ids()
        sim.fleet.restart(ids[:2])
        sim.fleet.restart(ids[:1])
        results = pd.DataFrame(
            {
                "instance_id": [ids[0], ids[1], ids[2], ids[2], ids[5]],
                "result": ["success", "success", "success", "skipped", "failed"],
            }
        )
        check = check_results(sim, "restart", ids[:5], results)
    # ids[3], ids[4] have no row, ids[2] has two, ids[5] was not requested
    assert check.lost == 4
    assert check.acted_twice == 1
    # ids[0] acted twice, ids[2] "success" but never acted
    assert {wrong[0] for wrong in check.wrong} == {ids[0], ids[2]}
    assert not check.clean
