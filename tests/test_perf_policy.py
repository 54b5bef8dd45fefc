"""How many list pages dmsnb reads at once, and how it backs off on 429."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

import dmsnb
from dmsnb._concurrency import AdaptiveLimit
from dmsnb.simulator import Call, Faults, Reply, Serve, Simulator

from .conftest import AK, PROJECT_ID, SK

MockFactory = Callable[..., tuple[dmsnb.Client, list[httpx.Request]]]


# -- the limit on its own ------------------------------------------------------


def answer(limit: AdaptiveLimit, event: str) -> None:
    """One request in its own slot: ``ok``, ``429``, or ``429 twice`` (its retry
    sent after the decrease is answered 429 again)."""
    with limit.slot():
        if event == "ok":
            limit.succeeded()
        elif event == "429":
            limit.throttled()
        elif event == "429 twice":
            limit.throttled()
            limit.throttled()
        else:
            raise AssertionError(f"unknown event {event!r}")


@pytest.mark.parametrize(
    ("maximum", "events", "limit"),
    [
        (16, [], 16),
        (16, ["ok"] * 50, 16),
        (16, ["429"], 8),
        (16, ["429", "429"], 4),
        (16, ["429 twice"], 4),
        (16, ["429"] * 10, 1),
        (1, ["429"], 1),
        (16, ["429"] + ["ok"] * 7, 8),
        (16, ["429"] + ["ok"] * 8, 9),
        (16, ["429"] + ["ok"] * 200, 16),
        (16, ["429"] * 4 + ["ok"] * 3, 3),
    ],
    ids=[
        "starts at the maximum",
        "never above the maximum",
        "a 429 halves it",
        "a later 429 halves it again",
        "a retry answered 429 again halves it again",
        "never below one",
        "one stays one",
        "no growth before limit answers",
        "one more after limit answers",
        "grows back to the maximum",
        "from one: two after one answer, three after two more",
    ],
)
def test_the_limit_moves_like_aimd(maximum: int, events: list[str], limit: int) -> None:
    pages = AdaptiveLimit(maximum)
    for event in events:
        answer(pages, event)
    assert pages.limit == limit
    assert pages.in_flight == 0


def test_a_burst_of_429_to_requests_sent_together_halves_the_limit_once() -> None:
    pages = AdaptiveLimit(8)
    all_sent = threading.Barrier(5, timeout=5)

    def request() -> None:
        with pages.slot():
            all_sent.wait()  # all five are out before any answer comes
            pages.throttled()

    threads = [threading.Thread(target=request) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)

    assert pages.limit == 4


def test_a_429_outside_a_slot_changes_nothing() -> None:
    pages = AdaptiveLimit(8)
    pages.throttled()
    assert pages.limit == 8


def peak_in_flight(pages: AdaptiveLimit, requests: int, hold: float) -> int:
    """Send ``requests`` at once through ``pages``; the most that were out."""
    lock = threading.Lock()
    counts = {"now": 0, "peak": 0}

    def request() -> None:
        with pages.slot():
            with lock:
                counts["now"] += 1
                counts["peak"] = max(counts["peak"], counts["now"])
            time.sleep(hold)
            with lock:
                counts["now"] -= 1

    threads = [threading.Thread(target=request) for _ in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return counts["peak"]


def test_no_more_than_the_limit_are_out_at_once() -> None:
    pages = AdaptiveLimit(6)
    answer(pages, "429")

    assert peak_in_flight(pages, requests=12, hold=0.02) == 3
    assert pages.in_flight == 0


@pytest.mark.parametrize(("maximum", "minimum"), [(0, 1), (4, 0), (2, 3)])
def test_a_limit_needs_sensible_bounds(maximum: int, minimum: int) -> None:
    with pytest.raises(ValueError, match="minimum"):
        AdaptiveLimit(maximum, minimum=minimum)


# -- the client's pages --------------------------------------------------------


def test_the_default_is_sixteen_pages_at_once(mock_client: MockFactory) -> None:
    # 33 pages: the first alone, then two rounds of 16. Each later page waits
    # until 16 are out, so fewer than 16 at once breaks the barrier.
    ids = [str(uuid.UUID(int=n + 1, version=4)) for n in range(33 * 50)]
    records = [{"instance_id": i, "name": f"kafka-{n}"} for n, i in enumerate(ids)]
    sixteen = threading.Barrier(16, timeout=10)
    lock = threading.Lock()
    counts = {"now": 0, "peak": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        if offset:
            with lock:
                counts["now"] += 1
                counts["peak"] = max(counts["peak"], counts["now"])
            sixteen.wait()
            with lock:
                counts["now"] -= 1
        page = records[offset : offset + 50]
        return httpx.Response(200, json={"instances": page, "instance_num": 1650})

    client, sent = mock_client(handler)
    frame = client.instances()

    assert client.max_workers == 16
    assert len(frame) == 1650
    assert counts["peak"] == 16
    assert len(sent) == 33


def test_max_workers_bounds_the_pages_at_once(mock_client: MockFactory) -> None:
    lock = threading.Lock()
    counts = {"now": 0, "peak": 0}
    ids = [str(uuid.UUID(int=n + 1, version=4)) for n in range(500)]
    records = [{"instance_id": i} for i in ids]

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        with lock:
            counts["now"] += 1
            counts["peak"] = max(counts["peak"], counts["now"])
        time.sleep(0.01)
        with lock:
            counts["now"] -= 1
        page = records[offset : offset + 50]
        return httpx.Response(200, json={"instances": page, "instance_num": 500})

    client, _ = mock_client(handler, max_workers=3)
    assert len(client.instances()) == 500
    assert 1 < counts["peak"] <= 3


def test_a_429_on_a_page_lowers_the_pages_at_once(mock_client: MockFactory) -> None:
    ids = [str(uuid.UUID(int=n + 1, version=4)) for n in range(400)]
    records = [{"instance_id": i} for i in ids]
    throttled = {"left": 1}
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        with lock:
            refuse = offset == 200 and throttled["left"] > 0
            throttled["left"] -= refuse
        if refuse:
            body = {"error_code": "APIGW.0308", "error_msg": "throttled"}
            return httpx.Response(429, json=body, headers={"Retry-After": "0"})
        page = records[offset : offset + 50]
        return httpx.Response(200, json={"instances": page, "instance_num": 400})

    client, sent = mock_client(handler, max_workers=8)
    frame = client.instances()

    assert len(frame) == 400
    assert len(sent) == 9  # eight pages and the one retry
    # Halved to 4, and one more slot after four answers (there are at most 7).
    assert client._page_limit.limit in (4, 5)


# -- against the simulator's 429 bursts ----------------------------------------


class Gate:
    """An interceptor that holds each later list page until ``width`` are in
    the service or ``patience`` passed, and records the most at once."""

    def __init__(self, width: int, patience: float = 0.1) -> None:
        self.width = width
        self.patience = patience
        self.peak = 0
        self._now = 0
        self._changed = threading.Condition()

    def __call__(self, call: Call, serve: Serve) -> Reply | None:
        if call.route.kind != "list" or "offset=0" in call.query.split("&"):
            return serve()
        with self._changed:
            self._now += 1
            self.peak = max(self.peak, self._now)
            self._changed.notify_all()
            self._changed.wait_for(lambda: self._now >= self.width, self.patience)
        try:
            return serve()
        finally:
            with self._changed:
                self._now -= 1

    def reset(self) -> None:
        with self._changed:
            self.peak = 0


@pytest.fixture
def throttling_sim() -> Iterator[tuple[Simulator, Gate]]:
    gate = Gate(width=8)
    # 17 pages: the first alone, then two rounds of eight.
    with Simulator(instances=850, seed=11, failed_creations=0, errors=0) as sim:
        sim.interceptor = gate
        yield sim, gate


def page_client(sim: Simulator, **options: Any) -> dmsnb.Client:
    retry = dmsnb.RetryPolicy(attempts=12, base_delay=0.005, max_delay=0.02)
    return sim.client(max_workers=8, retry=retry, **options)


def test_429_bursts_shrink_the_pages_at_once_and_it_grows_back(
    throttling_sim: tuple[Simulator, Gate],
) -> None:
    sim, gate = throttling_sim
    client = page_client(sim)
    ids = set(client.instances()["instance_id"])
    assert client._page_limit.limit == 8 and gate.peak == 8

    sim.faults = Faults(
        seed=3, rate_limit_rate=0.25, rate_limit_burst=3, retry_after=0.005
    )
    throttled = client.instances()
    assert sim.fault_counts["rate_limit"] > 0
    assert set(throttled["instance_id"]) == ids  # nothing lost, nothing twice
    assert len(throttled) == len(ids)
    shrunk = client._page_limit.limit
    assert shrunk <= 4

    sim.faults = Faults()
    gate.reset()
    client.instances()
    assert gate.peak < 8, "went back to full width at once after the 429s"

    for _ in range(2):
        client.instances()
    gate.reset()
    client.instances()
    assert client._page_limit.limit == 8
    assert gate.peak == 8
    client.close()


def test_without_429_the_pages_stay_at_full_width(
    throttling_sim: tuple[Simulator, Gate],
) -> None:
    sim, gate = throttling_sim
    client = page_client(sim)
    for _ in range(3):
        assert len(client.instances()) == 850
    assert client._page_limit.limit == 8
    assert gate.peak == 8
    client.close()


def test_a_client_built_by_hand_pages_like_the_default() -> None:
    client = dmsnb.Client(
        endpoint="https://dms.eu-de.otc.t-systems.com",
        project_id=PROJECT_ID,
        ak=AK,
        sk=SK,
        audit=None,
    )
    assert client.max_workers == 16
    assert client._page_limit.limit == 16
    client.close()
