"""Fault injection: what a raw HTTP client sees and what the fleet really did."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from dmsnb import _api
from dmsnb._retry import RetryPolicy
from dmsnb._run import Tracking
from dmsnb._signing import AKSKAuth
from dmsnb.simulator import Call, Faults, Reply, Serve, Simulator, Timings
from dmsnb.simulator.__main__ import build_parser, fault_flag, simulator_from_args
from dmsnb.simulator._faults import GARBAGE, KINDS, FaultInjector, field_names
from dmsnb.simulator._server import Route

ROOT = Path(__file__).resolve().parents[2]
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")
TIMINGS = Timings(
    restart_seconds=3.0, delete_seconds=3.0, list_hides_deleting_after=0.5
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[Simulator]:
    with Simulator(
        instances=30,
        seed=21,
        failed_creations=0,
        errors=0,
        timings=TIMINGS,
        clock=clock,
    ) as simulator:
        yield simulator


@pytest.fixture
def http(sim: Simulator) -> Iterator[httpx.Client]:
    with connect(sim) as client:
        yield client


def connect(sim: Simulator) -> httpx.Client:
    auth = AKSKAuth(sim.ak, sim.sk, sim.project_id)
    return httpx.Client(base_url=sim.base_url, auth=auth, timeout=10)


# -- one request, and what the client makes of it --------------------------------


def send(http: httpx.Client, sim: Simulator, op: str, iid: str) -> httpx.Response:
    project = sim.project_id
    if op == "list":
        return http.get(_api.instances_path("v2", project), params={"engine": "kafka"})
    if op == "show":
        return http.get(_api.instance_path("v2", project, iid))
    if op in ("restart", "delete"):
        body = {"action": op, "instances": [iid]}
        return http.post(_api.action_path("v2", project), json=body)
    assert op == "delete_one"
    return http.delete(_api.instance_path("v2", project, iid))


def chain(error: BaseException | None) -> Iterator[BaseException]:
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def seen(send_once: Callable[[], httpx.Response]) -> str:
    """What the client sees, in one word."""
    try:
        response = send_once()
    except httpx.ReadError as error:
        assert any(isinstance(cause, ConnectionResetError) for cause in chain(error))
        return "reset"
    except httpx.RemoteProtocolError as error:
        if "complete message body" in str(error):
            return "truncated"
        assert "without sending a response" in str(error)
        return "no answer"
    assert REQUEST_ID.match(response.headers["X-Request-Id"])
    status = response.status_code
    if status == 429:
        assert response.json()["error_code"] == "APIGW.0308"
        return f"429 retry-after {response.headers['Retry-After']}"
    if status >= 500:
        body = response.json()
        expected = {500: "DMS.00500000", 503: "DMS.111501025"}[status]
        assert body["error_code"] == expected
        assert body["error_msg"]
        return "5xx"
    if status == 204:
        assert response.content == b""
        return "ok"
    assert status == 200, response.text
    if response.headers["Content-Type"].startswith("text/html"):
        assert response.content == GARBAGE
        return "html"
    response.json()
    return "ok"


WRITE_OPS = ("restart", "delete", "delete_one")
OPS = ("list", "show", *WRITE_OPS)

# fault: (settings, what a read sees, what a write sees, is a write applied)
REQUEST_FAULTS: dict[str, tuple[Faults, str, str, bool]] = {
    "server_error": (Faults(server_error_rate=1), "5xx", "5xx", False),
    "rate_limit": (
        Faults(rate_limit_rate=1, retry_after=0.2),
        "429 retry-after 0.2",
        "429 retry-after 0.2",
        False,
    ),
    "reset": (Faults(reset_rate=1), "reset", "reset", False),
    "truncate": (Faults(truncate_rate=1), "truncated", "truncated", True),
    "garbage": (Faults(garbage_rate=1), "html", "html", True),
    "lost_answer": (Faults(lost_answer_rate=1), "ok", "no answer", True),
}


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("fault", REQUEST_FAULTS)
def test_request_faults_what_the_client_sees_and_the_fleet_did(
    http: httpx.Client, sim: Simulator, fault: str, op: str
) -> None:
    faults, read_sees, write_sees, applied = REQUEST_FAULTS[fault]
    iid = sim.fleet.ids("RUNNING")[0]
    sim.faults = faults
    expected = write_sees if op in WRITE_OPS else read_sees
    if op == "delete_one" and expected == "truncated":
        expected = "no answer"  # a 204 has no body: its headers are cut
    assert seen(lambda: send(http, sim, op, iid)) == expected

    log = [(r.action, r.instance_id, r.via) for r in sim.action_log]
    if op in WRITE_OPS and applied:
        action = "restart" if op == "restart" else "delete"
        via = "single" if op == "delete_one" else "batch"
        assert log == [(action, iid, via)]
        assert sim.fleet.status(iid) == (
            "RESTARTING" if op == "restart" else "DELETING"
        )
    else:
        assert log == []
        assert sim.fleet.status(iid) == "RUNNING"
    counts = sim.fault_counts
    hits = 0 if expected == "ok" else 1
    assert counts[fault] == hits
    assert sum(counts.values()) == hits + (fault == "rate_limit")
    assert sim.requests == {ROUTES[op]: 1}


ROUTES = {
    "list": ("GET", "list"),
    "show": ("GET", "show"),
    "restart": ("POST", "action"),
    "delete": ("POST", "action"),
    "delete_one": ("DELETE", "delete_one"),
}


SCOPED = ("server_error", "rate_limit", "reset", "truncate", "garbage")


@pytest.mark.parametrize("scope", ["reads", "writes"])
@pytest.mark.parametrize("fault", SCOPED)
def test_a_fault_limited_to_reads_or_writes(
    http: httpx.Client, sim: Simulator, fault: str, scope: str
) -> None:
    settings: dict[str, Any] = {f"{fault}_rate": 1.0, f"{fault}_on": scope}
    sim.faults = Faults(**settings, retry_after=0.2)
    iid = sim.fleet.ids("RUNNING")[0]
    hit = REQUEST_FAULTS[fault][1]
    read = seen(lambda: send(http, sim, "list", iid))
    write = seen(lambda: send(http, sim, "restart", iid))
    assert (read, write) == ((hit, "ok") if scope == "reads" else ("ok", hit))
    assert sim.fault_counts[fault] == 1


def test_unknown_routes_meet_no_faults(http: httpx.Client, sim: Simulator) -> None:
    sim.faults = Faults(server_error_rate=1, reset_rate=1)
    response = http.get(f"/v3/{sim.project_id}/instances")
    assert response.json()["error_code"] == "APIGW.0101"
    assert sum(sim.fault_counts.values()) == 0


# -- per-instance failed results -------------------------------------------------


@pytest.mark.parametrize("action", ["restart", "delete"])
def test_failed_results_are_not_acted_on(
    http: httpx.Client, sim: Simulator, action: str
) -> None:
    ids = sim.fleet.ids("RUNNING")[:20]
    sim.faults = Faults(failed_result_rate=0.4, seed=3)
    body = {"action": action, "instances": ids}
    response = http.post(_api.action_path("v2", sim.project_id), json=body)
    assert response.status_code == 200
    results = {e["instance"]: e["result"] for e in response.json()["results"]}
    assert list(results) == ids
    failed = [iid for iid in ids if results[iid] == "failed"]
    succeeded = [iid for iid in ids if results[iid] == "success"]
    assert 0 < len(failed) < len(ids)
    assert sim.fault_counts["failed_result"] == len(failed)
    assert [r.instance_id for r in sim.action_log] == succeeded
    assert {r.action for r in sim.action_log} == {action}
    busy = "RESTARTING" if action == "restart" else "DELETING"
    assert {sim.fleet.status(iid) for iid in succeeded} == {busy}
    assert {sim.fleet.status(iid) for iid in failed} == {"RUNNING"}


def test_failed_results_count_only_what_the_fault_changed(
    http: httpx.Client, sim: Simulator
) -> None:
    busy, running = sim.fleet.ids("RUNNING")[:2]
    sim.fleet.set_status(busy, "EXTENDING")  # a restart fails for it anyway
    sim.faults = Faults(failed_result_rate=1)
    body = {"action": "restart", "instances": [busy, running]}
    response = http.post(_api.action_path("v2", sim.project_id), json=body)
    assert [e["result"] for e in response.json()["results"]] == ["failed", "failed"]
    assert sim.fault_counts["failed_result"] == 1
    assert not sim.action_log
    # a single delete has no per-instance result: it is not affected
    assert seen(lambda: send(http, sim, "delete_one", running)) == "ok"
    assert [(r.instance_id, r.via) for r in sim.action_log] == [(running, "single")]


def test_a_retry_after_a_lost_answer_is_not_a_second_application(
    http: httpx.Client, sim: Simulator
) -> None:
    iid = sim.fleet.ids("RUNNING")[0]
    sim.faults = Faults(lost_answer_rate=1)
    assert seen(lambda: send(http, sim, "restart", iid)) == "no answer"
    sim.faults = Faults()
    again = send(http, sim, "restart", iid).json()
    assert again == {"results": [{"instance": iid, "result": "failed"}]}
    assert [r.instance_id for r in sim.action_log] == [iid]


# -- 429 bursts ------------------------------------------------------------------


def test_rate_limit_bursts(http: httpx.Client, sim: Simulator) -> None:
    sim.faults = Faults(rate_limit_rate=0.15, rate_limit_burst=4, seed=8)
    path = _api.instances_path("v2", sim.project_id)
    answers = [
        http.get(path, params={"engine": "kafka"}).status_code for _ in range(60)
    ]
    runs = [
        len(list(run)) for status, run in itertools.groupby(answers) if status == 429
    ]
    assert set(answers) == {200, 429}
    # back-to-back bursts make a longer run; only the last may be cut short
    assert all(run % 4 == 0 for run in runs[:-1])
    counts = sim.fault_counts
    assert counts["rate_limit"] == answers.count(429)
    assert counts["rate_limit"] > 4 * (counts["rate_limit_burst"] - 1)
    assert counts["rate_limit"] <= 4 * counts["rate_limit_burst"]
    assert sim.action_log == ()


def test_retry_after_defaults_to_one_second(http: httpx.Client, sim: Simulator) -> None:
    sim.faults = Faults(rate_limit_rate=1)
    assert seen(lambda: send(http, sim, "list", "")) == "429 retry-after 1"


def test_new_settings_end_a_burst(http: httpx.Client, sim: Simulator) -> None:
    sim.faults = Faults(rate_limit_rate=1, rate_limit_burst=50)
    assert seen(lambda: send(http, sim, "list", "")) == "429 retry-after 1"
    sim.faults = Faults(latency=0.001)
    assert seen(lambda: send(http, sim, "list", "")) == "ok"
    sim.faults = Faults()
    assert seen(lambda: send(http, sim, "list", "")) == "ok"
    assert sim.fault_counts["rate_limit"] == 1


# -- outcome faults on the fake clock ----------------------------------------------


def restart(http: httpx.Client, sim: Simulator, ids: list[str]) -> None:
    body = {"action": "restart", "instances": ids}
    response = http.post(_api.action_path("v2", sim.project_id), json=body)
    assert {e["result"] for e in response.json()["results"]} == {"success"}


def shown(http: httpx.Client, sim: Simulator, iid: str) -> str:
    response = send(http, sim, "show", iid)
    if response.status_code == 404:
        return "gone"
    return str(response.json()["status"])


def listed(http: httpx.Client, sim: Simulator, iid: str) -> str | None:
    response = http.get(
        _api.instances_path("v2", sim.project_id),
        params={"engine": "kafka", "instance_id": iid},
    )
    records = response.json()["instances"]
    return str(records[0]["status"]) if records else None


@pytest.mark.parametrize(
    ("faults", "later", "kind"),
    [
        (Faults(), "RUNNING", None),
        (Faults(stuck_rate=1), "RESTARTING", "stuck"),
        (Faults(restart_error_rate=1), "ERROR", "restart_error"),
    ],
)
def test_restart_outcomes(
    http: httpx.Client,
    sim: Simulator,
    clock: FakeClock,
    faults: Faults,
    later: str,
    kind: str | None,
) -> None:
    iid = sim.fleet.ids("RUNNING")[0]
    sim.faults = faults
    restart(http, sim, [iid])
    clock.now += 2.9
    assert shown(http, sim, iid) == "RESTARTING"
    clock.now += 0.2
    assert shown(http, sim, iid) == later
    clock.now += 10_000
    assert shown(http, sim, iid) == later
    assert listed(http, sim, iid) == later
    assert [r.instance_id for r in sim.action_log] == [iid]
    counts = sim.fault_counts
    assert sum(counts.values()) == (kind is not None)
    if kind:
        assert counts[kind] == 1


@pytest.mark.parametrize("op", ["delete", "delete_one"])
def test_delete_error_blip(
    http: httpx.Client, sim: Simulator, clock: FakeClock, op: str
) -> None:
    iid = sim.fleet.ids("RUNNING")[0]
    sim.faults = Faults(delete_error_blip_rate=1)
    assert seen(lambda: send(http, sim, op, iid)) == "ok"
    timeline: list[tuple[str, str | None]] = []
    for _ in range(4):  # 0.25 s, 1.25 s, 2.25 s, 3.25 s into a 3 s delete
        clock.now += 0.25 if not timeline else 1.0
        timeline.append((shown(http, sim, iid), listed(http, sim, iid)))
    assert timeline == [
        ("DELETING", "DELETING"),
        ("ERROR", "ERROR"),  # listed while in ERROR, though DELETING is hidden
        ("DELETING", None),
        ("gone", None),
    ]
    assert sim.fault_counts["delete_error_blip"] == 1
    assert [r.instance_id for r in sim.action_log] == [iid]


def test_delete_stuck(http: httpx.Client, sim: Simulator, clock: FakeClock) -> None:
    iid = sim.fleet.ids("RUNNING")[0]
    sim.faults = Faults(delete_stuck_rate=1)
    assert seen(lambda: send(http, sim, "delete", iid)) == "ok"
    clock.now += 10_000
    assert (shown(http, sim, iid), listed(http, sim, iid)) == ("DELETING", None)
    assert sim.fault_counts["delete_stuck"] == 1


def test_mixed_outcomes_match_the_counters_exactly(
    http: httpx.Client, sim: Simulator, clock: FakeClock
) -> None:
    ids = sim.fleet.ids("RUNNING")[:25]
    sim.faults = Faults(stuck_rate=0.3, restart_error_rate=0.3, seed=4)
    restart(http, sim, ids)
    clock.now += 3.5
    statuses = [sim.fleet.status(iid) for iid in ids]
    counts = sim.fault_counts
    assert statuses.count("RESTARTING") == counts["stuck"] > 0
    assert statuses.count("ERROR") == counts["restart_error"] > 0
    assert statuses.count("RUNNING") == 25 - counts["stuck"] - counts["restart_error"]
    assert sorted(r.instance_id for r in sim.action_log) == sorted(ids)
    # a stuck instance cannot be deleted, as on the real service
    stuck = ids[statuses.index("RESTARTING")]
    response = send(http, sim, "delete", stuck)
    assert response.json()["error_code"] == "DMS.00400099"


# -- determinism and counters ------------------------------------------------------

MIXED = Faults(
    seed=5,
    server_error_rate=0.2,
    reset_rate=0.1,
    garbage_rate=0.1,
    lost_answer_rate=0.2,
    failed_result_rate=0.3,
    stuck_rate=0.2,
)


def scenario(faults: Faults, reverse: bool = False) -> tuple[Any, ...]:
    """Restart then show 16 instances one by one; what was seen and done."""
    with Simulator(instances=20, seed=2, errors=0, failed_creations=0) as sim:
        sim.faults = faults
        ids = sim.fleet.ids("RUNNING")[:16]
        outcomes: dict[tuple[str, str], str] = {}
        with connect(sim) as http:
            for op, iid in itertools.product(
                ("restart", "show"), ids[:: -1 if reverse else 1]
            ):
                outcomes[op, iid] = seen(partial(send, http, sim, op, iid))
        done = sorted((r.action, r.instance_id) for r in sim.action_log)
        return dict(sorted(outcomes.items())), done, sim.fault_counts


def test_the_same_seed_gives_the_same_faults_in_any_order() -> None:
    first = scenario(MIXED)
    assert first == scenario(MIXED)
    assert first == scenario(MIXED, reverse=True)
    outcomes, done, counts = first
    assert {"ok", "5xx", "reset", "html", "no answer"} <= set(outcomes.values())
    assert 0 < len(done) < 16
    assert counts["server_error"] > 0 and counts["failed_result"] > 0
    other = scenario(Faults(**{**vars(MIXED), "seed": 6}))
    assert other[0] != outcomes


def test_counters_name_every_kind_and_start_at_zero(sim: Simulator) -> None:
    assert sim.fault_counts == dict.fromkeys(KINDS, 0)
    rated = [name for name in field_names() if name.endswith("_rate")]
    assert {name.removesuffix("_rate") for name in rated} <= set(KINDS)
    assert sim.faults == Faults()
    assert not sim.faults.active


def test_faults_change_at_run_time_from_many_threads(sim: Simulator) -> None:
    settings = [Faults(server_error_rate=1), Faults()]

    def flip(index: int) -> None:
        sim.faults = settings[index % 2]

    threads = [threading.Thread(target=flip, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sim.faults in settings
    with pytest.raises(TypeError):
        sim.faults = {"latency": 1}  # type: ignore[assignment]


@pytest.mark.parametrize(
    "settings",
    [
        {"server_error_rate": 1.5},
        {"reset_rate": -0.1},
        {"latency": -1},
        {"latency_jitter": float("nan")},
        {"retry_after": -1},
        {"rate_limit_burst": 0},
        {"garbage_on": "everything"},
        {"stuck_rate": 0.6, "restart_error_rate": 0.6},
        {"delete_error_blip_rate": 0.7, "delete_stuck_rate": 0.4},
    ],
)
def test_settings_are_checked(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Faults(**settings)


def test_describe_names_what_is_set() -> None:
    assert Faults().describe() == "none"
    assert Faults(latency=0.05, reset_rate=0.1).describe() == (
        "latency=0.05, reset_rate=0.1"
    )


# -- latency ------------------------------------------------------------------------


def test_latency_is_applied_to_concurrent_requests_side_by_side(
    sim: Simulator,
) -> None:
    sim.faults = Faults(latency=0.2)
    path = _api.instances_path("v2", sim.project_id)

    def timed(_: int) -> float:
        started = time.perf_counter()
        with connect(sim) as http:
            assert http.get(path, params={"engine": "kafka"}).status_code == 200
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        each = list(pool.map(timed, range(8)))
    elapsed = time.perf_counter() - started
    assert min(each) >= 0.2
    assert elapsed < 0.8  # serialized it would take 1.6 s
    assert sim.fault_counts["latency"] == 8


def test_latency_limited_to_writes(http: httpx.Client, sim: Simulator) -> None:
    sim.faults = Faults(latency=0.3, latency_on="writes")
    started = time.perf_counter()
    assert seen(lambda: send(http, sim, "list", "")) == "ok"
    assert time.perf_counter() - started < 0.25
    started = time.perf_counter()
    assert seen(lambda: send(http, sim, "restart", sim.fleet.ids()[0])) == "ok"
    assert time.perf_counter() - started >= 0.3


def fake_call(path: str, body: bytes = b"") -> Call:
    return Call("GET", path, "", {}, body, Route("show"), "0" * 32)


def test_jitter_is_uniform_extra_and_reproducible() -> None:
    def delays(seed: int) -> list[float]:
        slept: list[float] = []
        faults = Faults(latency=0.05, latency_jitter=0.1, seed=seed)
        injector = FaultInjector(faults, sleep=slept.append)
        for n in range(200):
            assert injector(fake_call(f"/v2/p/instances/{n}"), lambda: Reply(200))
        return slept

    slept = delays(1)
    assert all(0.05 <= delay < 0.15 for delay in slept)
    assert min(slept) < 0.06 and max(slept) > 0.14
    assert delays(1) == slept != delays(2)


# -- the interceptor hook still works, inside the faults ----------------------------


def test_the_interceptor_sees_only_what_the_faults_let_through(
    http: httpx.Client, sim: Simulator
) -> None:
    passed: list[str] = []

    def recording(call: Call, serve: Serve) -> Reply | None:
        passed.append(call.route.kind)
        return serve()

    sim.interceptor = recording
    sim.faults = Faults(server_error_rate=1)
    assert seen(lambda: send(http, sim, "list", "")) == "5xx"
    sim.faults = Faults(garbage_rate=1)
    assert seen(lambda: send(http, sim, "list", "")) == "html"
    assert passed == ["list"]


# -- the simulator's own client and command line ----------------------------------


def test_the_simulator_client_is_paced_for_its_timings() -> None:
    timings = Timings(restart_seconds=0.4, delete_seconds=2.0)
    with Simulator(instances=3, timings=timings) as sim:
        with sim.client(audit=None) as client:
            assert client.tracking == Tracking(
                interval=0.1, max_interval=0.4, settle_seconds=0.8, timeout=40.0
            )
            assert client.retry == RetryPolicy(
                base_delay=0.05, max_delay=0.5, total_seconds=20
            )
        mine = Tracking(interval=1.0)
        with sim.client(audit=None, tracking=mine, retry=RetryPolicy()) as client:
            assert client.tracking is mine
            assert client.retry == RetryPolicy()
    with Simulator(instances=1, timings=Timings(0.0, 0.0)) as quick:
        assert quick.tracking() == Tracking(
            interval=0.02, max_interval=0.02, settle_seconds=0.5, timeout=30.0
        )


def test_every_setting_has_a_flag() -> None:
    flags = {fault_flag(name) for name in field_names()}
    assert flags >= {
        "--latency",
        "--latency-jitter",
        "--server-error-rate",
        "--rate-limit-rate",
        "--rate-limit-burst",
        "--retry-after",
        "--reset-rate",
        "--truncate-rate",
        "--garbage-rate",
        "--failed-result-rate",
        "--lost-answer-rate",
        "--stuck-rate",
        "--restart-error-rate",
        "--delete-error-blip-rate",
        "--delete-stuck-rate",
        "--fault-seed",
    }
    argv = "--latency 0.05 --server-error-rate 0.1 --server-error-on writes"
    argv += " --rate-limit-rate 0.2 --rate-limit-burst 3 --retry-after 0.2"
    argv += " --stuck-rate 0.5 --fault-seed 9"
    sim = simulator_from_args(build_parser().parse_args(argv.split()))
    assert sim.faults == Faults(
        latency=0.05,
        server_error_rate=0.1,
        server_error_on="writes",
        rate_limit_rate=0.2,
        rate_limit_burst=3,
        retry_after=0.2,
        stuck_rate=0.5,
        seed=9,
    )
    assert simulator_from_args(build_parser().parse_args([])).faults == Faults()
    for bad in (
        ["--reset-rate", "2"],
        ["--rate-limit-burst", "0"],
        ["--latency-on", "x"],
    ):
        with pytest.raises(SystemExit):
            build_parser().parse_args(bad)


def test_the_command_line_injects_faults() -> None:
    command = [sys.executable, "-m", "dmsnb.simulator", "--port", "0"]
    command += ["--instances", "3", "--server-error-rate", "1", "--fault-seed", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        base_url = child.stdout.readline().strip()
        keys = build_parser().parse_args([])
        probe = simulator_from_args(keys)  # the same derived keys, not started
        auth = AKSKAuth(probe.ak, probe.sk, probe.project_id)
        with httpx.Client(base_url=base_url, auth=auth) as http:
            response = http.get(_api.instances_path("v2", probe.project_id))
        assert response.status_code in (500, 503)
        child.terminate()
        _, err = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0
    assert "injecting faults: seed=2, server_error_rate=1.0" in err
