"""Plans and guards: what a batch action will touch, decided before it runs.

A :class:`Plan` lists every selected instance with its status at planning
time, whether the action is allowed on it now and, if not, why. Executing a
plan acts only on its allowed rows; the others get a ``skipped`` result
carrying the plan's reason.
"""

from __future__ import annotations

import fnmatch
import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
else:
    from ._lazy import pd

from ._ids import checked_instance_ids

PLAN_ACTIONS: tuple[str, ...] = ("restart", "delete", "delete_failed")

# Statuses in which the service refuses a delete (DMS.00400099).
DELETE_REFUSED = frozenset(
    {"CREATING", "STARTING", "STOPPING", "CLOSING", "RESTARTING"}
)


@dataclass(frozen=True)
class Protection:
    """A rule that a delete never crosses.

    An instance is protected when it has any of ``tags`` (``{"env": "prod"}``;
    the value ``"*"`` matches any value of that key), when its name matches
    any of the shell-style ``names`` patterns (``"*-prod-*"``), or when
    ``predicate(record)`` is true for its row (a dict of the instances
    frame). ``actions`` says which actions the rule guards; by default only
    ``delete`` and ``delete_failed``.
    """

    tags: Mapping[str, str] = field(default_factory=dict)
    names: Sequence[str] = ()
    predicate: Callable[[Mapping[str, Any]], bool] | None = None
    label: str = ""
    actions: Sequence[str] = ("delete", "delete_failed")

    def __post_init__(self) -> None:
        if isinstance(self.names, str):
            raise ValueError("names must be a list of patterns, e.g. ['*-prod-*']")
        if not (self.tags or self.names or self.predicate):
            raise ValueError("a Protection needs tags, names or a predicate")
        unknown = set(self.actions) - set(PLAN_ACTIONS)
        if unknown:
            raise ValueError(f"unknown actions in Protection: {sorted(unknown)}")

    def reason(self, action: str, record: Mapping[str, Any]) -> str | None:
        """Why this rule protects ``record`` from ``action``, or None."""
        if action not in self.actions:
            return None
        tags = tag_dict(record.get("tags"))
        for key, wanted in self.tags.items():
            if key in tags and (wanted == "*" or tags[key] == wanted):
                return f"protected: tag {key}={tags[key]}"
        name = str(record.get("name") or "")
        for pattern in self.names:
            if fnmatch.fnmatchcase(name, pattern):
                return f"protected: name matches {pattern!r}"
        if self.predicate is not None and self.predicate(record):
            return f"protected: {self.label or 'rule'}"
        return None


def tag_dict(tags: object) -> dict[str, str]:
    """The service's ``[{"key": k, "value": v}]`` tags as a plain dict."""
    if not isinstance(tags, (list, tuple)):
        return {}
    pairs = {}
    for tag in tags:
        if isinstance(tag, Mapping) and "key" in tag:
            pairs[str(tag["key"])] = str(tag.get("value", ""))
    return pairs


@dataclass
class Plan:
    """What a batch action will do; built by :meth:`dmsnb.Client.plan`.

    ``frame`` has one row per selected instance: ``instance_id``, ``name``,
    ``status`` (at planning time), ``allowed`` and ``reason``.
    """

    action: str
    frame: pd.DataFrame
    endpoint: str
    project_id: str
    created_at: datetime
    use_all_failure: bool = False
    executed_at: datetime | None = None
    """When a run started acting on this plan; a plan is used once."""

    @property
    def instance_ids(self) -> list[str]:
        """The ids the action will be sent for, in plan order."""
        return [str(i) for i in self.frame.loc[self.frame["allowed"], "instance_id"]]

    @property
    def count(self) -> int:
        return int(self.frame["allowed"].sum())

    @property
    def skipped(self) -> pd.DataFrame:
        skipped: pd.DataFrame = self.frame[~self.frame["allowed"]]
        return skipped

    def statuses(self) -> dict[str, str | None]:
        status = self.frame["status"].astype(object).where(self.frame["status"].notna())
        return dict(zip(self.frame["instance_id"], status, strict=True))

    def summary(self) -> str:
        verb = (
            "delete failed creations" if self.action == "delete_failed" else self.action
        )
        return (
            f"{verb}: {self.count} instance(s) to act on, "
            f"{len(self.frame) - self.count} skipped"
        )

    def __repr__(self) -> str:
        return f"<dmsnb.Plan {self.summary()}>"

    def _repr_html_(self) -> str:
        table = self.frame.to_html(index=False, na_rep="", escape=True)
        return f"<p><b>{html.escape(self.summary())}</b></p>{table}"


def build_plan(
    action: str,
    selection: Iterable[str] | pd.DataFrame | None,
    fleet: pd.DataFrame,
    *,
    endpoint: str,
    project_id: str,
    protect: Protection | Sequence[Protection] = (),
) -> Plan:
    """Decide, instance by instance, what ``action`` may touch now.

    ``fleet`` is a fresh instances frame (with failed creations); every
    check reads it, nothing is sent.
    """
    if action not in PLAN_ACTIONS:
        raise ValueError(
            f"unknown action {action!r}; use one of {', '.join(PLAN_ACTIONS)}"
        )
    rules = [protect] if isinstance(protect, Protection) else list(protect)
    for rule in rules:
        if not isinstance(rule, Protection):
            raise ValueError(f"protect takes Protection rules, not {rule!r}")

    records: dict[str, dict[str, Any]] = {
        str(record["instance_id"]): {str(key): value for key, value in record.items()}
        for record in fleet.to_dict("records")
        if isinstance(record.get("instance_id"), str)
    }
    if action == "delete_failed":
        if selection is not None:
            raise ValueError(
                "delete_failed acts on every failed creation; select nothing, "
                "or use 'delete' with the ids"
            )
        ids = [i for i, r in records.items() if r.get("status") == "CREATEFAILED"]
    else:
        if selection is None:
            raise ValueError(f"select the instances to {action}")
        ids = checked_instance_ids(selection)

    rows = []
    for instance_id in ids:
        record = records.get(instance_id)
        reason = _refusal(action, record, rules)
        rows.append(
            {
                "instance_id": instance_id,
                "name": None if record is None else record.get("name"),
                "status": None if record is None else record.get("status"),
                "allowed": reason is None,
                "reason": reason,
            }
        )
    frame = pd.DataFrame.from_records(
        rows, columns=["instance_id", "name", "status", "allowed", "reason"]
    )
    frame["allowed"] = frame["allowed"].astype(bool)
    for column in ("instance_id", "name", "status", "reason"):
        frame[column] = frame[column].astype("string")

    # The all-failure call deletes every failed creation; when a rule keeps
    # one of them, the others are deleted by id instead.
    use_all_failure = action == "delete_failed" and bool(frame["allowed"].all())
    return Plan(
        action=action,
        frame=frame,
        endpoint=endpoint,
        project_id=project_id,
        created_at=datetime.now(timezone.utc),
        use_all_failure=use_all_failure,
    )


def _refusal(
    action: str, record: Mapping[str, Any] | None, rules: Sequence[Protection]
) -> str | None:
    if record is None:
        return "not in the fleet: no such instance in this project"
    status = str(record.get("status"))
    for rule in rules:
        reason = rule.reason(action, record)
        if reason:
            return reason
    if action == "restart" and status != "RUNNING":
        return f"status {status}: only RUNNING instances can be restarted"
    if action in ("delete", "delete_failed"):
        if status in DELETE_REFUSED:
            return f"status {status}: the service refuses to delete it now"
        if status == "DELETING":
            return "already being deleted"
        if status == "RECYCLE":
            return "already deleted (in the Recycle Bin)"
    return None
