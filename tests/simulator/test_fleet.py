"""The fleet model: records, status transitions on a fake clock, action rules."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from dmsnb.simulator import Fleet, InstanceFilter, Timings
from dmsnb.simulator._fleet import (
    DELETE_FORBIDDEN,
    DeleteRefused,
    StatusForbids,
    UnknownInstance,
    generate_records,
)

DOCS = Path(__file__).resolve().parents[1] / "fixtures" / "docs"
EPOCH = 1_760_000_000.0  # a fixed "now" for the records
EVERYTHING = InstanceFilter(include_failure=True)
TIMINGS = Timings(
    restart_seconds=3.0, delete_seconds=4.0, list_hides_deleting_after=2.0
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_fleet(clock: FakeClock, timings: Timings = TIMINGS, **kwargs: Any) -> Fleet:
    options: dict[str, Any] = {"instances": 20, "seed": 3, "errors": 0}
    options["failed_creations"] = 2
    options.update(kwargs)
    return Fleet(timings=timings, clock=clock, now_epoch=EPOCH, **options)


def listed_ids(fleet: Fleet) -> list[str]:
    records, _ = fleet.page(EVERYTHING, 0, 10_000)
    return [record["instance_id"] for record in records]


def a_running(fleet: Fleet) -> str:
    return fleet.ids("RUNNING")[0]


# -- records -------------------------------------------------------------------


def test_same_seed_same_fleet_other_seed_other_fleet() -> None:
    first = generate_records(50, 11, now_epoch=EPOCH)
    assert first == generate_records(50, 11, now_epoch=EPOCH)
    other = generate_records(50, 12, now_epoch=EPOCH)
    assert {r["instance_id"] for r in first}.isdisjoint(r["instance_id"] for r in other)


def test_records_have_every_documented_field_with_its_type() -> None:
    documented = json.loads((DOCS / "v2-show-instance-response.json").read_text())
    for record in generate_records(30, 5, now_epoch=EPOCH):
        assert documented.keys() <= record.keys()
        for key, value in documented.items():
            assert type(record[key]) is type(value), key


def test_records_look_like_the_real_service() -> None:
    records = generate_records(400, 9, now_epoch=EPOCH)
    sizes = {"100MB": "mini", "300MB": "small", "600MB": "middle", "1200MB": "high"}
    for record in records:
        assert uuid.UUID(record["instance_id"]).version == 4
        assert re.fullmatch(r"kafka-[a-z]+-(prod|stg|dev)-\d{2}", record["name"])
        assert record["engine_version"] in {"1.1.0", "2.3.0", "2.7", "3.x"}
        size = sizes[record["specification"]]
        assert record["resource_spec_code"] == f"dms.instance.kafka.cluster.c3.{size}"
        assert record["partition_num"].isdigit()
        age_days = (EPOCH * 1000 - int(record["created_at"])) / 86_400_000
        assert 0 <= age_days <= 3 * 366
        assert record["port"] in (9092, 9093)
        assert re.fullmatch(r"\d\d:\d\d:\d\d", record["maintain_begin"])
        assert all(tag.keys() == {"key", "value"} for tag in record["tags"])
        if record["status"] != "CREATEFAILED":
            ips = record["connect_address"].split(",")
            assert all(ip.startswith("192.168.") for ip in ips)
    names = [record["name"] for record in records]
    assert len(set(names)) == len(names)
    assert any(not record["tags"] for record in records)
    versions = [record["engine_version"] for record in records]
    assert versions.count("3.x") > versions.count("1.1.0")


def test_the_random_status_mix_is_mostly_running() -> None:
    statuses = [r["status"] for r in generate_records(2000, 1, now_epoch=EPOCH)]
    share = {status: statuses.count(status) / len(statuses) for status in statuses}
    assert share["RUNNING"] > 0.8
    assert 0.03 < share["ERROR"] < 0.07
    assert 0.03 < share["CREATEFAILED"] < 0.07


def test_exact_counts_of_failed_creations_and_errors() -> None:
    statuses = [
        r["status"]
        for r in generate_records(30, 2, failed_creations=4, errors=3, now_epoch=EPOCH)
    ]
    assert statuses.count("CREATEFAILED") == 4
    assert statuses.count("ERROR") == 3
    assert statuses.count("RUNNING") == 23


@pytest.mark.parametrize(
    ("count", "failed", "errors"), [(3, 2, 2), (5, -1, 0), (-1, None, None)]
)
def test_impossible_counts_are_refused(
    count: int, failed: int | None, errors: int | None
) -> None:
    with pytest.raises(ValueError):
        generate_records(count, 1, failed_creations=failed, errors=errors)


def test_timings_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="restart_seconds"):
        Timings(restart_seconds=-1)


def test_listing_order_is_newest_first_then_id() -> None:
    fleet = make_fleet(FakeClock(), instances=60)
    records, _ = fleet.page(EVERYTHING, 0, 100)
    keys = [(-int(r["created_at"]), r["instance_id"]) for r in records]
    assert keys == sorted(keys)


# -- transitions on the clock ----------------------------------------------------

RECYCLING = Timings(
    restart_seconds=3.0,
    delete_seconds=4.0,
    list_hides_deleting_after=2.0,
    recycle_bin=True,
)


@pytest.mark.parametrize(
    ("timings", "action", "timeline"),
    [
        pytest.param(
            TIMINGS,
            "restart",
            [
                (0, "RESTARTING", True),
                (2.9, "RESTARTING", True),
                (3.0, "RUNNING", True),
            ],
            id="restart",
        ),
        pytest.param(
            TIMINGS,
            "delete",
            [
                (0, "DELETING", True),
                (1.9, "DELETING", True),
                (2.0, "DELETING", False),
                (3.9, "DELETING", False),
                (4.0, None, False),
            ],
            id="delete",
        ),
        pytest.param(
            RECYCLING,
            "delete",
            [(0, "DELETING", True), (2.0, "DELETING", False), (4.0, "RECYCLE", True)],
            id="delete-into-recycle-bin",
        ),
        pytest.param(
            RECYCLING,
            "force_delete",
            [(0, "DELETING", True), (4.0, None, False)],
            id="force-delete-skips-recycle-bin",
        ),
        pytest.param(
            TIMINGS,
            "delete_one",
            [(0, "DELETING", True), (2.0, "DELETING", False), (4.0, None, False)],
            id="single-delete",
        ),
    ],
)
def test_status_timeline(
    timings: Timings, action: str, timeline: list[tuple[float, str | None, bool]]
) -> None:
    clock = FakeClock()
    fleet = make_fleet(clock, timings)
    iid = a_running(fleet)
    start = clock.now
    if action == "restart":
        assert fleet.restart([iid]) == [(iid, "success")]
    elif action == "delete_one":
        fleet.delete_one(iid)
    else:
        result = fleet.delete([iid], force=action == "force_delete")
        assert result == [(iid, "success")]
    for at, status, listed in timeline:
        clock.now = start + at
        assert fleet.status(iid) == status, at
        assert (fleet.show(iid) is None) == (status is None)
        assert (iid in listed_ids(fleet)) == listed, at


def test_a_recycled_instance_can_be_deleted_for_good() -> None:
    clock = FakeClock()
    fleet = make_fleet(clock, RECYCLING)
    iid = a_running(fleet)
    fleet.delete([iid])
    clock.advance(4.0)
    assert fleet.status(iid) == "RECYCLE"
    assert fleet.delete([iid]) == [(iid, "success")]
    clock.advance(4.0)
    assert fleet.status(iid) is None


def test_zero_timings_settle_on_the_next_read() -> None:
    fleet = make_fleet(FakeClock(), Timings(0, 0, 0))
    iid = a_running(fleet)
    fleet.restart([iid])
    assert fleet.status(iid) == "RUNNING"


def test_the_real_clock_moves_statuses_too() -> None:
    fleet = Fleet(instances=5, seed=1, errors=0, timings=Timings(0.05, 0.05, 0.02))
    iid = fleet.ids()[0]
    fleet.restart([iid])
    assert fleet.status(iid) == "RESTARTING"
    time.sleep(0.08)
    assert fleet.status(iid) == "RUNNING"


# -- rules of the actions -----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "result"),
    [
        ("RUNNING", "success"),
        ("RESTARTING", "failed"),
        ("ERROR", "failed"),
        ("CREATEFAILED", "failed"),
        ("DELETING", "failed"),
        ("FROZEN", "failed"),
        ("CREATING", "failed"),
        ("RECYCLE", "failed"),
    ],
)
def test_only_a_running_instance_restarts(status: str, result: str) -> None:
    fleet = make_fleet(FakeClock())
    iid = a_running(fleet)
    fleet.set_status(iid, status)
    assert fleet.restart([iid]) == [(iid, result)]
    assert len(fleet.action_log) == (result == "success")


def test_restart_of_an_unknown_id_fails_and_keeps_request_order() -> None:
    fleet = make_fleet(FakeClock())
    first, second = fleet.ids("RUNNING")[:2]
    unknown = str(uuid.uuid4())
    results = fleet.restart([second, unknown, first])
    assert results == [(second, "success"), (unknown, "failed"), (first, "success")]


@pytest.mark.parametrize("status", sorted(DELETE_FORBIDDEN))
def test_delete_is_refused_whole_when_one_status_forbids_it(status: str) -> None:
    fleet = make_fleet(FakeClock())
    blocked, other = fleet.ids("RUNNING")[:2]
    fleet.set_status(blocked, status)
    with pytest.raises(DeleteRefused) as refused:
        fleet.delete([other, blocked, str(uuid.uuid4())])
    assert refused.value.instance_ids == (blocked,)
    assert fleet.status(other) == "RUNNING"
    assert fleet.action_log == ()
    with pytest.raises(DeleteRefused):
        fleet.delete_one(blocked)


@pytest.mark.parametrize(
    ("status", "result"),
    [
        ("RUNNING", "success"),
        ("ERROR", "success"),
        ("CREATEFAILED", "success"),
        ("FROZEN", "success"),
        ("EXTENDING", "success"),
        ("RECYCLE", "success"),
        ("DELETING", "failed"),
    ],
)
def test_delete_rules_per_status(status: str, result: str) -> None:
    fleet = make_fleet(FakeClock())
    iid = a_running(fleet)
    fleet.set_status(iid, status)
    assert fleet.delete([iid]) == [(iid, result)]
    assert fleet.status(iid) == "DELETING"


def test_delete_of_an_unknown_id_fails() -> None:
    fleet = make_fleet(FakeClock())
    unknown = str(uuid.uuid4())
    assert fleet.delete([unknown]) == [(unknown, "failed")]
    with pytest.raises(UnknownInstance):
        fleet.delete_one(unknown)


def test_single_delete_of_an_instance_already_deleting() -> None:
    fleet = make_fleet(FakeClock())
    iid = a_running(fleet)
    fleet.delete_one(iid)
    with pytest.raises(StatusForbids):
        fleet.delete_one(iid)
    assert [record.via for record in fleet.action_log] == ["single"]


def test_delete_failed_removes_only_the_failed_creations() -> None:
    fleet = make_fleet(FakeClock(), instances=30, failed_creations=4, errors=3)
    before = fleet.statuses()
    failed = {iid for iid, status in before.items() if status == "CREATEFAILED"}
    assert set(fleet.delete_failed()) == failed
    after = fleet.statuses()
    assert after == {iid: s for iid, s in before.items() if iid not in failed}
    assert {(r.instance_id, r.status_before, r.via) for r in fleet.action_log} == {
        (iid, "CREATEFAILED", "all_failure") for iid in failed
    }
    assert fleet.delete_failed() == []


def test_the_action_log_records_what_was_done() -> None:
    clock = FakeClock()
    fleet = make_fleet(clock)
    first, second = fleet.ids("RUNNING")[:2]
    fleet.restart([first, first])
    clock.advance(1)
    fleet.delete([second])
    log = fleet.action_log
    assert [(r.action, r.instance_id, r.status_before) for r in log] == [
        ("restart", first, "RUNNING"),
        ("delete", second, "RUNNING"),
    ]
    assert log[1].time - log[0].time == 1


def test_concurrent_restarts_of_one_instance_succeed_once() -> None:
    fleet = make_fleet(FakeClock())
    iid = a_running(fleet)
    results: list[str] = []

    def restart() -> None:
        results.extend(result for _, result in fleet.restart([iid]))

    threads = [threading.Thread(target=restart) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("success") == 1
    assert len(fleet.action_log) == 1


def test_set_status_of_an_unknown_instance() -> None:
    with pytest.raises(UnknownInstance):
        make_fleet(FakeClock()).set_status(str(uuid.uuid4()), "RUNNING")


# -- filters ------------------------------------------------------------------------


def test_filters() -> None:
    fleet = make_fleet(FakeClock(), instances=40, failed_creations=3)
    records, total = fleet.page(EVERYTHING, 0, 100)
    assert total == 40
    name = records[5]["name"]
    team = name.split("-")[1]

    def count(**kwargs: Any) -> int:
        return fleet.page(InstanceFilter(include_failure=True, **kwargs), 0, 1)[1]

    assert count(name=team.upper()) == sum(team in r["name"] for r in records)
    assert count(name=name, exact_match_name=True) == 1
    assert count(name=name.upper(), exact_match_name=True) == 0
    assert count(instance_id=records[7]["instance_id"]) == 1
    assert count(status="createfailed") == 3
    assert count(engine="rabbitmq") == 0
    assert count(engine="kafka") == 40
    assert count(enterprise_project_id="0") == 40
    assert fleet.page(InstanceFilter(), 0, 1)[1] == 37
    assert fleet.page(InstanceFilter(status="CREATEFAILED"), 0, 1)[1] == 0


def test_page_slices_and_copies() -> None:
    fleet = make_fleet(FakeClock(), instances=25)
    page, total = fleet.page(EVERYTHING, 20, 10)
    assert (len(page), total) == (5, 25)
    page[0]["status"] = "MANGLED"
    assert fleet.status(page[0]["instance_id"]) != "MANGLED"
    assert repr(fleet) == "<Fleet seed=3 instances=25>"
