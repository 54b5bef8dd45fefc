from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest

from dmsnb import instances_frame, merge_results, results_frame
from dmsnb._frames import RESULT_COLUMNS

from .conftest import fixture_json

IDS = [f"{n:08d}-0000-4000-8000-000000000000" for n in range(4)]


@pytest.mark.parametrize(
    "fixture",
    ["docs/v1-list-instances-response.json", "docs/v2-list-instances-response.json"],
)
def test_documented_list_parses_into_a_typed_frame(fixture: str) -> None:
    records = fixture_json(fixture)["instances"]
    frame = instances_frame(records)

    assert list(frame.columns[:6]) == [
        "instance_id",
        "name",
        "status",
        "engine_version",
        "specification",
        "created_at",
    ]
    assert set(records[0]) <= set(frame.columns), "no field may be dropped"
    row = frame.iloc[0]
    assert frame["created_at"].dtype == "datetime64[ms, UTC]" or str(
        frame["created_at"].dtype
    ).endswith("UTC]")
    expected_created = datetime.fromtimestamp(
        int(records[0]["created_at"]) / 1000, tz=timezone.utc
    )
    assert row["created_at"] == pd.Timestamp(expected_created)
    assert frame["partition_num"].dtype == "Int64"
    assert row["partition_num"] == 300
    assert frame["port"].dtype == "Int64"
    assert frame["ssl_enable"].dtype == "boolean"
    assert row["status"] == "RUNNING"
    assert row["available_zones"] == records[0]["available_zones"]


def test_show_fixture_fields_are_all_columns() -> None:
    record = fixture_json("docs/v2-show-instance-response.json")
    frame = instances_frame([record])
    assert set(record) <= set(frame.columns)
    assert frame.loc[0, "cross_vpc_info"] == record["cross_vpc_info"]


@pytest.mark.parametrize(
    ("field", "raw", "expected"),
    [
        ("partition_num", "300", 300),
        ("partition_num", "", pd.NA),
        ("partition_num", None, pd.NA),
        ("partition_num", "3.5", pd.NA),
        ("partition_num", "many", pd.NA),
        ("storage_space", 492, 492),
        ("created_at", "not-a-time", pd.NaT),
        ("created_at", None, pd.NaT),
        ("ssl_enable", "true", True),
        ("ssl_enable", "yes", pd.NA),
    ],
)
def test_conversion_of_odd_values(field: str, raw: object, expected: object) -> None:
    frame = instances_frame([{"instance_id": IDS[0], field: raw}])
    value = frame.loc[0, field]
    if expected is pd.NA or expected is pd.NaT:
        assert pd.isna(value)
    else:
        assert value == expected


def test_unknown_fields_are_kept_and_input_is_untouched() -> None:
    records = [
        {"instance_id": IDS[0], "created_at": "1585618587087", "brand_new": {"a": 1}}
    ]
    before = [dict(record) for record in records]
    frame = instances_frame(records)
    assert frame.loc[0, "brand_new"] == {"a": 1}
    assert records == before


def test_empty_list_gives_the_leading_columns() -> None:
    frame = instances_frame([])
    assert len(frame) == 0
    assert "instance_id" in frame.columns
    assert "created_at" in frame.columns


def _fleet() -> pd.DataFrame:
    return instances_frame(
        [
            {"instance_id": IDS[n], "name": f"kafka-{n}", "status": "RUNNING", "x": n}
            for n in range(3)
        ]
    )


def _results(ids: list[str], result: str = "success") -> pd.DataFrame:
    return results_frame(
        [
            {
                "instance_id": instance_id,
                "action": "restart",
                "result": result,
                "requested_at": datetime(2026, 1, 1, tzinfo=timezone.utc),
            }
            for instance_id in ids
        ]
    )


def test_merge_adds_result_columns_on_instance_id() -> None:
    fleet = _fleet()
    merged = merge_results(fleet, _results([IDS[2], IDS[0]]))

    assert list(merged["instance_id"]) == list(fleet["instance_id"])
    assert list(merged.columns[: len(fleet.columns)]) == list(fleet.columns)
    assert set(RESULT_COLUMNS) <= set(merged.columns)
    assert list(merged["result"].fillna("-")) == ["success", "-", "success"]
    assert merged.loc[1, ["action", "result", "reason"]].isna().all()


def test_merge_never_changes_the_callers_frames() -> None:
    fleet = _fleet()
    results = _results([IDS[0]])
    fleet_copy, results_copy = fleet.copy(deep=True), results.copy(deep=True)

    merge_results(fleet, results)

    pd.testing.assert_frame_equal(fleet, fleet_copy)
    pd.testing.assert_frame_equal(results, results_copy)


def test_merging_twice_gives_the_same_frame() -> None:
    fleet = _fleet()
    results = _results([IDS[1]])
    once = merge_results(fleet, results)
    twice = merge_results(once, results)
    pd.testing.assert_frame_equal(once, twice)


def test_a_newer_result_replaces_the_older_one() -> None:
    fleet = _fleet()
    once = merge_results(fleet, _results([IDS[1]], "failed"))
    again = merge_results(once, _results([IDS[1]], "success"))
    assert again.loc[1, "result"] == "success"
    assert len(again.columns) == len(once.columns)


def test_a_result_for_an_instance_gone_from_the_list_is_kept() -> None:
    fleet = _fleet()
    merged = merge_results(fleet, _results([IDS[3]]))
    assert len(merged) == len(fleet) + 1
    assert merged.iloc[-1]["instance_id"] == IDS[3]
    assert merged.iloc[-1]["result"] == "success"
    assert pd.isna(merged.iloc[-1]["name"])


def test_merge_refuses_two_rows_for_one_instance() -> None:
    with pytest.raises(ValueError, match=IDS[0]):
        merge_results(_fleet(), _results([IDS[0], IDS[0]]))


def test_merge_needs_instance_id() -> None:
    with pytest.raises(ValueError, match="instance_id"):
        merge_results(pd.DataFrame({"a": [1]}), _results([IDS[0]]))


def test_results_frame_round_trip() -> None:
    results = _results(IDS[:2])
    records = results.to_dict("records")
    again = results_frame(records)
    pd.testing.assert_frame_equal(results, again)
