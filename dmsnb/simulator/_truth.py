"""Comparing a results frame with what the simulator really did."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from . import Simulator

SETTLED = {"restart": ("RUNNING",), "delete": (None, "RECYCLE")}


@dataclass(frozen=True)
class Check:
    """How a results frame compares with the simulator's action log.

    ``lost``: requested instances without exactly one row, plus rows for
    instances nobody requested. ``acted_twice``: instances the fleet applied
    the action to more than once. ``misreported``: rows whose result
    contradicts the truth (``success`` but not acted once or not settled;
    ``skipped`` but acted; ``failed`` although acted and settled).
    ``unknown`` is counted apart: it never contradicts the truth.
    """

    instances: int
    lost: int
    acted_twice: int
    misreported: int
    unknown: int
    wrong: list[tuple[str, str, int, str | None]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.acted_twice == 0 and self.misreported == 0


def check_results(
    sim: Simulator, action: str, requested: Sequence[str], results: pd.DataFrame
) -> Check:
    """Compare ``results`` of ``action`` on ``requested`` ids with the fleet."""
    rows = Counter(str(i) for i in results["instance_id"])
    wanted = set(requested)
    lost = sum(1 for i in wanted if rows[i] != 1) + sum(
        n for i, n in rows.items() if i not in wanted
    )
    applied = Counter(r.instance_id for r in sim.action_log if r.action == action)
    acted_twice = sum(1 for n in applied.values() if n > 1)

    wrong = []
    for instance_id, result in zip(
        results["instance_id"], results["result"], strict=True
    ):
        times = applied[str(instance_id)]
        status = sim.fleet.status(str(instance_id))
        if not agrees(str(result), action, times, status):
            wrong.append((str(instance_id), str(result), times, status))
    unknown = int((results["result"] == "unknown").sum())
    return Check(len(wanted), lost, acted_twice, len(wrong), unknown, wrong)


def agrees(result: str, action: str, times_acted: int, status_now: str | None) -> bool:
    """Whether one result says what the simulator really did."""
    settled = status_now in SETTLED[action]
    if result == "success":
        return times_acted == 1 and settled
    if result == "skipped":
        return times_acted == 0
    if result == "failed":
        return times_acted == 0 or not settled
    return result == "unknown"
