from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from dmsnb import Protection, instances_frame
from dmsnb._plan import build_plan, tag_dict

from .test_client import make_ids

IDS = make_ids(6)
FLEET = instances_frame(
    [
        {
            "instance_id": IDS[0],
            "name": "kafka-orders-prod-01",
            "status": "RUNNING",
            "tags": [{"key": "env", "value": "prod"}],
        },
        {
            "instance_id": IDS[1],
            "name": "kafka-orders-stg-01",
            "status": "RUNNING",
            "tags": [{"key": "env", "value": "stg"}],
        },
        {"instance_id": IDS[2], "name": "kafka-billing-dev-01", "status": "RESTARTING"},
        {"instance_id": IDS[3], "name": "kafka-billing-dev-02", "status": "ERROR"},
        {
            "instance_id": IDS[4],
            "name": "kafka-new-dev-01",
            "status": "CREATEFAILED",
            "tags": [{"key": "keep", "value": "yes"}],
        },
        {"instance_id": IDS[5], "name": "kafka-old-dev-01", "status": "DELETING"},
    ]
)
MISSING = make_ids(1, seed=99)[0]


def plan(action: str, ids: Any, **options: Any) -> pd.DataFrame:
    built = build_plan(
        action, ids, FLEET, endpoint="https://e", project_id="p", **options
    )
    return built.frame.set_index("instance_id")


# action, instance, protection, allowed, reason (part)
RULES = [
    ("restart", 0, None, True, None),
    ("restart", 2, None, False, "status RESTARTING: only RUNNING"),
    ("restart", 3, None, False, "status ERROR: only RUNNING"),
    ("delete", 0, None, True, None),
    ("delete", 2, None, False, "refuses to delete it now"),
    ("delete", 3, None, True, None),
    ("delete", 4, None, True, None),
    ("delete", 5, None, False, "already being deleted"),
    ("delete", 0, Protection(tags={"env": "prod"}), False, "protected: tag env=prod"),
    ("delete", 1, Protection(tags={"env": "prod"}), True, None),
    ("delete", 1, Protection(tags={"env": "*"}), False, "protected: tag env=stg"),
    ("delete", 0, Protection(names=["*-prod-*"]), False, "name matches '*-prod-*'"),
    ("delete", 1, Protection(names=["*-prod-*"]), True, None),
    (
        "delete",
        3,
        Protection(predicate=lambda r: r["status"] == "ERROR", label="ERROR kept"),
        False,
        "protected: ERROR kept",
    ),
    ("restart", 0, Protection(tags={"env": "prod"}), True, None),
    (
        "restart",
        0,
        Protection(tags={"env": "prod"}, actions=("restart", "delete")),
        False,
        "protected",
    ),
]


@pytest.mark.parametrize(("action", "index", "rule", "allowed", "reason"), RULES)
def test_plan_rules(
    action: str, index: int, rule: Protection | None, allowed: bool, reason: str | None
) -> None:
    row = plan(action, [IDS[index]], protect=rule or ()).loc[IDS[index]]
    assert bool(row["allowed"]) is allowed
    if reason is None:
        assert pd.isna(row["reason"])
    else:
        assert reason in row["reason"]


def test_an_id_not_in_the_fleet_is_skipped_with_the_reason() -> None:
    row = plan("restart", [MISSING]).loc[MISSING]
    assert not row["allowed"]
    assert "not in the fleet" in row["reason"]


def test_plan_keeps_the_selection_order_and_statuses() -> None:
    built = build_plan("restart", [IDS[3], IDS[0]], FLEET, endpoint="e", project_id="p")
    assert list(built.frame["instance_id"]) == [IDS[3], IDS[0]]
    assert built.instance_ids == [IDS[0]]
    assert built.count == 1
    assert built.statuses() == {IDS[3]: "ERROR", IDS[0]: "RUNNING"}
    assert "1 instance(s) to act on, 1 skipped" in repr(built)
    assert "<table" in built._repr_html_()


def test_delete_failed_selects_the_failed_creations() -> None:
    built = build_plan("delete_failed", None, FLEET, endpoint="e", project_id="p")
    assert built.instance_ids == [IDS[4]]
    assert built.use_all_failure


def test_a_protected_failed_creation_turns_the_all_failure_call_off() -> None:
    built = build_plan(
        "delete_failed",
        None,
        FLEET,
        endpoint="e",
        project_id="p",
        protect=Protection(tags={"keep": "yes"}),
    )
    assert built.count == 0
    assert not built.use_all_failure


@pytest.mark.parametrize(
    ("action", "selection", "options", "message"),
    [
        ("reboot", [IDS[0]], {}, "unknown action 'reboot'"),
        ("restart", None, {}, "select the instances"),
        ("delete_failed", [IDS[0]], {}, "select nothing"),
        ("restart", [IDS[0]], {"protect": ["env=prod"]}, "Protection rules"),
        ("restart", [IDS[0], IDS[0]], {}, "more than once"),
    ],
)
def test_bad_plans(
    action: str, selection: Any, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_plan(action, selection, FLEET, endpoint="e", project_id="p", **options)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs tags, names or a predicate"),
        ({"names": "*-prod-*"}, "list of patterns"),
        ({"tags": {"a": "b"}, "actions": ("reboot",)}, "unknown actions"),
    ],
)
def test_bad_protections(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Protection(**options)


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ([{"key": "a", "value": "1"}], {"a": "1"}),
        ([{"key": "a"}], {"a": ""}),
        (None, {}),
        ("a=1", {}),
        ([{"value": "x"}, {"key": "b", "value": 2}], {"b": "2"}),
    ],
)
def test_tag_dict(tags: object, expected: dict[str, str]) -> None:
    assert tag_dict(tags) == expected
