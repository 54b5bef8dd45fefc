"""The audit trail: an append-only JSON Lines file of everything dmsnb sends.

Each line is one record with ``ts`` (UTC, ISO 8601), ``run_id``, ``seq`` and
``kind``:

- ``run``: who (user, host, process), where (endpoint, project, API
  version), the action, the settings and the plan, when a run starts;
- ``intent``: the ids of one write call, written and flushed to disk
  *before* the call is sent;
- ``answer``: what came back for each of those ids (``accepted``,
  ``failed``, ``not_sent`` or ``lost``), with the request id;
- ``settled``: each instance's final result;
- ``end``: the counts, and whether the run was cancelled or interrupted.

No header, key, token or signature is ever written. Because the intent is
on disk before anything is sent, a run that dies at any point leaves a
trail from which every instance's outcome can be told
(:func:`audit_outcomes`).
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import threading
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
else:
    from ._lazy import pd

DEFAULT_AUDIT_PATH = "dmsnb.audit.jsonl"


class AuditTrail:
    """Appends records to one JSON Lines file; safe to share between threads."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._seq = 0

    def __repr__(self) -> str:
        return f"<AuditTrail {self.path}>"

    @staticmethod
    def new_run_id() -> str:
        """A fresh id for a run (or a report) on this trail."""
        return new_run_id()

    def write(self, kind: str, run_id: str, **fields: Any) -> None:
        """Append one record and force it to disk before returning."""
        with self._lock:
            self._seq += 1
            record = {
                "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                "run_id": run_id,
                "seq": self._seq,
                "kind": kind,
                **fields,
            }
            line = json.dumps(record, default=str, ensure_ascii=False) + "\n"
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())


def new_run_id() -> str:
    """16 hex characters: unique enough to tell runs of one trail apart."""
    return uuid.uuid4().hex[:16]


def who() -> dict[str, Any]:
    """The operator and machine, as the ``run`` record names them."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return {"user": user, "host": socket.gethostname(), "pid": os.getpid()}


_COLUMNS = [
    "ts",
    "run_id",
    "seq",
    "kind",
    "action",
    "wave",
    "instance_id",
    "outcome",
    "reason",
    "status",
    "request_id",
]


def read_audit(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The audit trail as a frame: one row per record and instance.

    ``run`` (its plan), ``intent`` and ``answer`` records name many
    instances and give one row each; ``end`` and ``refused`` records give
    one row without an instance. A last line cut short (the process died
    while writing it) is skipped.
    """
    rows: list[dict[str, Any]] = []
    text = Path(path).read_text(encoding="utf-8")
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        rows += _rows_of(record)

    frame = pd.DataFrame.from_records(rows, columns=_COLUMNS)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
    frame["seq"] = frame["seq"].astype("Int64")
    frame["wave"] = pd.to_numeric(frame["wave"], errors="coerce").astype("Int64")
    trail: pd.DataFrame = frame
    return trail


def _rows_of(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    base = {key: record.get(key) for key in ("ts", "run_id", "seq", "kind", "action")}
    base["wave"] = record.get("wave")
    base["request_id"] = record.get("request_id")
    kind = record.get("kind")
    if kind == "intent":
        return [
            {**base, "instance_id": instance_id, "outcome": "sending"}
            for instance_id in record.get("instance_ids", [])
        ]
    if kind == "answer":
        outcomes = record.get("outcomes", {})
        return [
            {
                **base,
                "instance_id": instance_id,
                "outcome": outcome,
                "reason": record.get("error"),
            }
            for instance_id, outcome in outcomes.items()
        ]
    if kind == "settled":
        return [
            {
                **base,
                "instance_id": record.get("instance_id"),
                "outcome": record.get("result"),
                "reason": record.get("reason"),
                "status": record.get("status_after"),
            }
        ]
    if kind == "run" and record.get("instances"):
        return [
            {
                **base,
                "instance_id": entry.get("instance_id"),
                "outcome": "planned" if entry.get("allowed") else "skipped",
                "reason": entry.get("reason"),
                "status": entry.get("status"),
            }
            for entry in record.get("instances", [])
        ]
    return [{**base, "reason": record.get("note")}]


def audit_outcomes(trail: pd.DataFrame | str | os.PathLike[str]) -> pd.DataFrame:
    """Each instance's outcome per run, as far as the trail can tell.

    ``result`` is the settled result when there is one; otherwise
    ``unknown`` for an instance whose write was sent (its answer lost, or
    accepted but not yet settled when the run stopped), ``failed`` for a
    refused or never-sent one, and ``skipped`` for one that was only
    planned. ``evidence`` names the record the verdict rests on. Rows come
    in the order the runs started (``started_at``); ``last_at`` is the time
    of the instance's last record in its run.
    """
    frame = trail if isinstance(trail, pd.DataFrame) else read_audit(trail)
    per_instance = frame[frame["instance_id"].notna()].sort_values(
        ["ts", "seq"], kind="stable"
    )
    rows = []
    for (run_id, instance_id), events in per_instance.groupby(
        ["run_id", "instance_id"], sort=False
    ):
        rows.append(
            {
                "run_id": run_id,
                "instance_id": instance_id,
                "started_at": events["ts"].iloc[0],
                "last_at": events["ts"].iloc[-1],
                **_verdict(events),
            }
        )
    columns = ["run_id", "instance_id", "started_at", "last_at", "action"]
    outcomes: pd.DataFrame = pd.DataFrame.from_records(
        rows, columns=[*columns, "result", "evidence"]
    )
    return outcomes


def _verdict(events: pd.DataFrame) -> dict[str, Any]:
    action = next((a for a in events["action"] if isinstance(a, str)), None)
    kinds = list(events["kind"])
    outcomes = list(events["outcome"])
    if "settled" in kinds:
        last = events[events["kind"] == "settled"].iloc[-1]
        return {"action": action, "result": last["outcome"], "evidence": "settled"}
    if "answer" in kinds:
        answer = outcomes[len(kinds) - 1 - kinds[::-1].index("answer")]
        if answer in ("failed", "not_sent"):
            return {
                "action": action,
                "result": "failed",
                "evidence": f"answer {answer}",
            }
        return {"action": action, "result": "unknown", "evidence": f"answer {answer}"}
    if "intent" in kinds:
        return {"action": action, "result": "unknown", "evidence": "intent, no answer"}
    return {"action": action, "result": "skipped", "evidence": "plan only"}
