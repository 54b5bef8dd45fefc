"""Performance, measured side by side with the official SDK and the ideal bound.

Starts the embedded simulator in its own process with a fixed latency added
to every request (50 ms unless told), and measures, each case several times
(the median is shown):

- listing 2,000 and 10,000 instances into a DataFrame: dmsnb's
  ``client.instances()`` against the official SDK paging one call after
  the other (limit 50) into ``pandas.DataFrame``, against the ideal bound
  at dmsnb's concurrency (one round trip for the first page, then
  ``ceil((pages - 1) / concurrency)``) and the floor of two round trips;
- restarting 500 instances and following them until all are RUNNING:
  dmsnb's ``execute`` against the SDK (batch calls of 50, then
  ``show_instance`` per instance per poll round), with the requests counted
  at the simulator;
- frame conversion and merge of 10,000 and 100,000 instances against plain
  ``pandas.json_normalize`` and ``DataFrame.merge``;
- ``import dmsnb`` in a cold process, and whether it loads ipywidgets;
- ``dmsnb.Panel`` built for 10,000 instances.

Ends with one line:

    perf: list2000 ratio_vs_sdk=R ratio_vs_ideal=I; track500 requests=Q ratio_vs_sdk=T

where R is how many times faster dmsnb lists than the SDK, I is dmsnb's time
over the ideal bound, Q the requests dmsnb sent for the tracking case and T
how many times more the SDK sent.

Run: ``python benchmarks/run.py`` (``--help`` for the settings). Absolute
times depend on the machine; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import multiprocessing
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from multiprocessing.connection import Connection
from typing import Any

import httpx
import pandas as pd

import dmsnb
from dmsnb._client import DEFAULT_MAX_WORKERS
from dmsnb._signing import AKSKAuth
from dmsnb.simulator import Faults, Fleet, InstanceFilter, Simulator, Timings

PAGE = 50
"""Instances per list page, and per batch call."""

SEED = 2026


# -- the simulator in its own process ------------------------------------------


@dataclass(frozen=True)
class FleetSettings:
    instances: int
    latency: float
    restart_seconds: float = 3.0


@dataclass
class ServiceTimes:
    """How long the simulator took to serve requests, latency excluded."""

    seconds: dict[str, list[float]] = field(default_factory=dict)

    def median_ms(self, kind: str) -> float:
        values = self.seconds.get(kind, [])
        return 1000 * statistics.median(values) if values else math.nan


def _serve(connection: Connection, settings: FleetSettings) -> None:
    """The child process: serve a simulator until told to stop."""
    times: dict[str, list[float]] = {}

    def timed(call: Any, serve: Callable[[], Any]) -> Any:
        # The fault-injection hook sits inside the latency: this is the
        # simulator's own time to answer.
        started = time.perf_counter()
        try:
            return serve()
        finally:
            times.setdefault(call.route.kind, []).append(time.perf_counter() - started)

    timings = Timings(
        restart_seconds=settings.restart_seconds,
        delete_seconds=settings.restart_seconds,
    )
    simulator = Simulator(
        instances=settings.instances,
        seed=SEED,
        timings=timings,
        failed_creations=0,
        errors=0,
        faults=Faults(latency=settings.latency),
    )
    simulator.interceptor = timed
    simulator.start()
    connection.send(
        (simulator.base_url, simulator.ak, simulator.sk, simulator.project_id)
    )
    while True:
        command = connection.recv()
        if command == "requests":
            connection.send(dict(simulator.requests))
        elif command == "service_times":
            connection.send({kind: list(values) for kind, values in times.items()})
            times.clear()
        else:
            break
    simulator.stop()
    connection.close()


class SimulatorProcess:
    """A simulator served by a child process, so that its work does not take
    the benchmark's interpreter lock (a real service runs elsewhere too)."""

    def __init__(self, settings: FleetSettings) -> None:
        context = multiprocessing.get_context("spawn")
        self.settings = settings
        self._connection, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, settings), daemon=True
        )
        self._process.start()
        child.close()
        try:
            if not self._connection.poll(120):
                raise RuntimeError("the simulator process did not start in 120 s")
            self.base_url, self.ak, self.sk, self.project_id = self._connection.recv()
        except EOFError:
            raise RuntimeError(
                "the simulator process stopped before serving; its error is above"
            ) from None

    def requests(self) -> dict[tuple[str, str], int]:
        """Requests received so far, per (method, route kind)."""
        self._connection.send("requests")
        counts: dict[tuple[str, str], int] = self._connection.recv()
        return counts

    def service_times(self) -> ServiceTimes:
        """The simulator's own serving times since the last call."""
        self._connection.send("service_times")
        return ServiceTimes(self._connection.recv())

    def stop(self) -> None:
        self._connection.send("stop")
        self._process.join(30)
        self._connection.close()


@contextmanager
def simulator_process(settings: FleetSettings) -> Iterator[SimulatorProcess]:
    process = SimulatorProcess(settings)
    try:
        yield process
    finally:
        process.stop()


def dmsnb_client(
    sim: SimulatorProcess, concurrency: int, tracking: dmsnb.Tracking | None = None
) -> dmsnb.Client:
    return dmsnb.Client(
        endpoint=sim.base_url,
        project_id=sim.project_id,
        ak=sim.ak,
        sk=sim.sk,
        simulator=True,
        audit=None,
        max_workers=concurrency,
        tracking=tracking,
        retry=dmsnb.RetryPolicy(base_delay=0.05, max_delay=0.5, total_seconds=20),
    )


def sdk_client(sim: SimulatorProcess) -> Any:
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkkafka.v2 import KafkaClient

    credentials = BasicCredentials(sim.ak, sim.sk, sim.project_id)
    builder = KafkaClient.new_builder().with_credentials(credentials)
    return builder.with_endpoints([sim.base_url]).build()


def sent(before: dict[tuple[str, str], int], after: dict[tuple[str, str], int]) -> int:
    return sum(after.values()) - sum(before.values())


# -- measuring -----------------------------------------------------------------


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    """The median wall time of ``repeat`` runs of ``action``.

    Garbage left by the case before is collected before each run, so that
    no run pays for another's.
    """
    times = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@dataclass
class Row:
    case: str
    dmsnb: str
    peer: str
    peer_value: str
    ratio: str


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    panel: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)

    def add(self, case: str, dmsnb: str, peer: str, value: str, ratio: str) -> None:
        self.rows.append(Row(case, dmsnb, peer, value, ratio))


def seconds_text(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


# -- listing -------------------------------------------------------------------


def sdk_list_frame(sdk: Any) -> pd.DataFrame:
    """What a user of the SDK writes: page by page, then one DataFrame."""
    from huaweicloudsdkkafka.v2 import ListInstancesRequest

    rows: list[dict[str, Any]] = []
    offset = 0
    while True:
        request = ListInstancesRequest(engine="kafka", offset=offset, limit=PAGE)
        answer = sdk.list_instances(request)
        rows += [instance.to_dict() for instance in answer.instances or []]
        offset += PAGE
        if offset >= (answer.instance_num or 0):
            break
    return pd.DataFrame(rows)


def plain_pages(
    sim: SimulatorProcess, concurrency: int, count: int, repeat: int
) -> float:
    """Every page fetched with plain httpx at the same concurrency, and
    nothing read from them: what the simulator allows any client."""
    auth = AKSKAuth(sim.ak, sim.sk, sim.project_id)
    path = f"/v2/{sim.project_id}/instances"
    limits = httpx.Limits(max_connections=max(10, 2 * concurrency))
    with httpx.Client(base_url=sim.base_url, auth=auth, limits=limits) as http:

        def get(offset: int) -> None:
            params = {"engine": "kafka", "offset": str(offset), "limit": str(PAGE)}
            http.get(path, params=params).raise_for_status()

        def every_page() -> None:
            get(0)
            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(get, range(PAGE, count, PAGE)))

        every_page()  # warm the connections
        return median_seconds(every_page, repeat)


class Listed:
    """A client whose fleet is already listed: the panel's own work alone."""

    def __init__(self, client: dmsnb.Client, fleet: pd.DataFrame) -> None:
        self._client = client
        self._fleet = fleet

    def instances(self, **filters: Any) -> pd.DataFrame:
        return self._fleet.copy()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def bench_listing(
    count: int,
    args: argparse.Namespace,
    report: Report,
    *,
    plain_peer: bool = False,
    panel: bool = False,
) -> None:
    """List ``count`` instances; with ``panel``, build the panel for them."""
    latency, concurrency = args.latency, args.concurrency
    with simulator_process(FleetSettings(count, latency)) as sim:
        client = dmsnb_client(sim, concurrency)
        sdk = sdk_client(sim)

        fleet = client.instances()  # warm: connections, caches
        repeat = args.repeat if count <= 2_000 else args.sdk_repeat
        ours = median_seconds(client.instances, repeat)
        plain = plain_pages(sim, concurrency, count, args.repeat) if plain_peer else 0
        if panel:
            widget = dmsnb.Panel  # the widget stack is imported before the clock
            built = median_seconds(lambda: widget(client), args.sdk_repeat)
            listed = Listed(client, fleet)
            drawn = median_seconds(lambda: widget(listed), args.sdk_repeat)

        # The SDK asks one page at a time: the simulator's time per page is
        # then its own work, with no other request waiting beside it.
        sim.service_times()
        frames: list[pd.DataFrame] = []
        theirs = median_seconds(
            lambda: frames.append(sdk_list_frame(sdk)), args.sdk_repeat
        )
        service = sim.service_times().median_ms("list")
        client.close()
    for who, listed in (("dmsnb", fleet), ("the SDK", frames[-1])):
        if len(listed) != count:
            raise RuntimeError(f"{who} listed {len(listed)} of {count} instances")

    pages = math.ceil(count / PAGE)
    round_trips = 1 + math.ceil((pages - 1) / concurrency)
    ideal = latency * round_trips
    floor = latency * 2
    name = f"list {count:,}"
    report.add(
        f"{name} -> DataFrame",
        seconds_text(ours),
        "SDK, page after page",
        seconds_text(theirs),
        f"{theirs / ours:.1f}x faster",
    )
    if plain_peer:
        report.add(
            "",
            "",
            f"plain httpx, {concurrency} at once, unread",
            seconds_text(plain),
            f"{ours / plain:.2f}x plain httpx",
        )
    report.add(
        "",
        "",
        f"ideal, {round_trips} round trips",
        seconds_text(ideal),
        f"{ours / ideal:.2f}x the ideal",
    )
    report.add(
        "",
        "",
        "floor, 2 round trips",
        seconds_text(floor),
        f"{ours / floor:.2f}x the floor",
    )
    report.notes.append(
        f"{name}: {pages} pages; the simulator needs {service:.1f} ms of its "
        "own to serve one page (median, latency excluded), and serves one page "
        "at a time (one process, one lock)"
    )
    key = f"list{count}"
    report.figures[f"{key}_ratio_vs_sdk"] = theirs / ours
    report.figures[f"{key}_ratio_vs_ideal"] = ours / ideal
    if panel:
        report.panel = [
            Row(
                f"panel built for {count:,}",
                seconds_text(built),
                "listing the fleet alone",
                seconds_text(ours),
                "",
            ),
            Row("  of it the widgets", seconds_text(drawn), "", "", ""),
        ]


# -- tracking ------------------------------------------------------------------


@dataclass
class Tracked:
    seconds: float
    requests: int
    rounds: int
    most_in_a_round: int
    all_running: bool


def track_with_dmsnb(
    sim: SimulatorProcess, concurrency: int, tracking: dmsnb.Tracking
) -> Tracked:
    client = dmsnb_client(sim, concurrency, tracking)
    fleet = client.instances()
    plan = client.plan("restart", fleet, fleet=fleet)

    # Each progress call after the last batch call ends one poll round.
    marks: list[tuple[int, dict[tuple[str, str], int]]] = []

    def progress(run: dmsnb.Run) -> None:
        marks.append((len(marks), sim.requests()))

    before = sim.requests()
    started = time.perf_counter()
    results = client.execute(plan, on_progress=progress)
    seconds = time.perf_counter() - started
    after = sim.requests()
    client.close()

    batches = math.ceil(len(fleet) / PAGE)
    polls = [counts for _, counts in marks[batches - 1 :]]
    per_round = [sent(a, b) for a, b in itertools.pairwise(polls)]
    per_round = [n for n in per_round if n]
    return Tracked(
        seconds=seconds,
        requests=sent(before, after),
        rounds=len(per_round),
        most_in_a_round=max(per_round, default=0),
        all_running=bool((results["result"] == "success").all()),
    )


def track_with_sdk(sim: SimulatorProcess, interval: float, timeout: float) -> Tracked:
    """What a user of the SDK writes: batch calls, then show each instance."""
    from huaweicloudsdkkafka.v2 import (
        BatchRestartOrDeleteInstanceReq,
        BatchRestartOrDeleteInstancesRequest,
        ShowInstanceRequest,
    )

    sdk = sdk_client(sim)
    ids = list(sdk_list_frame(sdk)["instance_id"])
    before = sim.requests()
    started = time.perf_counter()
    for start in range(0, len(ids), PAGE):
        body = BatchRestartOrDeleteInstanceReq(
            action="restart", instances=ids[start : start + PAGE]
        )
        sdk.batch_restart_or_delete_instances(
            BatchRestartOrDeleteInstancesRequest(body=body)
        )

    # The status turns RESTARTING as the call is accepted, so the first
    # RUNNING seen afterwards is the instance back (kind to the SDK loop).
    pending = list(ids)
    rounds = most = 0
    while pending and time.perf_counter() - started < timeout:
        if rounds:
            time.sleep(interval)
        rounds += 1
        most = max(most, len(pending))
        still = []
        for instance_id in pending:
            shown = sdk.show_instance(ShowInstanceRequest(instance_id=instance_id))
            if shown.status not in ("RUNNING", "ERROR"):
                still.append(instance_id)
        pending = still
    seconds = time.perf_counter() - started
    requests = sent(before, sim.requests())
    return Tracked(seconds, requests, rounds, most, all_running=not pending)


def bench_tracking(args: argparse.Namespace, report: Report) -> None:
    count = args.track
    restart = args.restart_seconds
    tracking = dmsnb.Tracking(
        interval=restart / 4,
        max_interval=restart,
        settle_seconds=2 * restart,
        timeout=max(60.0, 20 * restart),
    )
    settings = FleetSettings(count, args.latency, restart_seconds=restart)
    with simulator_process(settings) as sim:
        ours = [
            track_with_dmsnb(sim, args.concurrency, tracking)
            for _ in range(args.repeat)
        ]
        theirs = [
            track_with_sdk(sim, tracking.interval, tracking.timeout)
            for _ in range(args.sdk_repeat)
        ]
    for name, runs in (("dmsnb", ours), ("SDK", theirs)):
        if not all(run.all_running for run in runs):
            raise RuntimeError(f"{name}: not every instance came back RUNNING")

    our_seconds = statistics.median(run.seconds for run in ours)
    their_seconds = statistics.median(run.seconds for run in theirs)
    our_requests = round(statistics.median(run.requests for run in ours))
    their_requests = round(statistics.median(run.requests for run in theirs))
    most = max(run.most_in_a_round for run in ours)
    pages = math.ceil(count / PAGE)
    report.add(
        f"restart {count} until RUNNING",
        seconds_text(our_seconds),
        "SDK, show per instance",
        seconds_text(their_seconds),
        f"{their_seconds / our_seconds:.1f}x faster",
    )
    report.add(
        "  requests for it (at the sim)",
        f"{our_requests}",
        "SDK, same job",
        f"{their_requests}",
        f"{their_requests / our_requests:.1f}x fewer",
    )
    rounds = statistics.median(run.rounds for run in ours)
    report.add(
        "  requests per poll round, most",
        f"{most}",
        f"bound ceil({count}/{PAGE}) + missing",
        f"{pages} + 0",
        "within" if most <= pages else "OVER",
    )
    report.notes.append(
        f"restart {count}: restart takes {restart} s on the simulator; dmsnb "
        f"polled {rounds:.0f} rounds (median) with the tracking interval "
        f"{tracking.interval} s backing off to {tracking.max_interval} s; the "
        "SDK loop waits the same interval between rounds"
    )
    report.figures["track_requests"] = our_requests
    report.figures["track_ratio_vs_sdk"] = their_requests / our_requests


# -- frames --------------------------------------------------------------------


def service_records(count: int) -> list[dict[str, Any]]:
    """``count`` instance records as the service sends them.

    The simulator's fleet gives 10,000 distinct ones; larger counts repeat
    them under new ids and names.
    """
    distinct = min(count, 10_000)
    fleet = Fleet(instances=distinct, seed=SEED)
    base, _ = fleet.page(InstanceFilter(include_failure=True), 0, distinct)
    rng = random.Random(f"copies of {SEED}")
    records = list(base)
    copy = 0
    while len(records) < count:
        copy += 1
        for record in base[: count - len(records)]:
            records.append(
                {
                    **record,
                    "instance_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "name": f"{record['name']}-c{copy}",
                }
            )
    return records


def result_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    now = pd.Timestamp.now(tz="UTC")
    return [
        {
            "instance_id": record["instance_id"],
            "action": "restart",
            "result": "success",
            "reason": "RUNNING again after the restart",
            "status_before": "RUNNING",
            "status_after": "RUNNING",
            "requested_at": now,
            "settled_at": now,
            "duration_s": 61.5,
            "wave": 1,
        }
        for record in records
    ]


def bench_frames(count: int, args: argparse.Namespace, report: Report) -> None:
    records = service_records(count)
    rows = result_rows(records)
    repeat = args.repeat if count < 10_000 else args.sdk_repeat

    frame = dmsnb.instances_frame(records)
    plain = pd.json_normalize(records)
    ours = median_seconds(lambda: dmsnb.instances_frame(records), repeat)
    theirs = median_seconds(lambda: pd.json_normalize(records), repeat)
    name = f"{count:,}"
    report.add(
        f"frame of {name} instances",
        seconds_text(ours),
        "pandas.json_normalize",
        seconds_text(theirs),
        f"{theirs / ours:.2f}x as fast",
    )

    results = dmsnb.results_frame(rows)
    plain_results = pd.json_normalize(rows)
    ours_merge = median_seconds(lambda: dmsnb.merge_results(frame, results), repeat)
    theirs_merge = median_seconds(
        lambda: plain.merge(plain_results, on="instance_id", how="left"), repeat
    )
    report.add(
        f"merge of {name} results",
        seconds_text(ours_merge),
        "DataFrame.merge",
        seconds_text(theirs_merge),
        f"{theirs_merge / ours_merge:.2f}x as fast",
    )
    per_10k = 10_000 / count / 1e6
    ours_mb = frame.memory_usage(deep=True).sum() * per_10k
    theirs_mb = plain.memory_usage(deep=True).sum() * per_10k
    report.add(
        f"  memory per 10,000 ({name})",
        f"{ours_mb:.1f} MB",
        "pandas.json_normalize",
        f"{theirs_mb:.1f} MB",
        f"{theirs_mb / ours_mb:.2f}x as small",
    )
    report.figures[f"frame{count}_seconds"] = ours


# -- import ----------------------------------------------------------------------


_IMPORT_PROBE = """
import json, sys, time
started = time.perf_counter()
import dmsnb
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "widgets": "ipywidgets" in sys.modules}))
"""


def bench_import(args: argparse.Namespace, report: Report) -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root}
    probes = []
    for _ in range(max(args.repeat, 5)):
        done = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            cwd=root,
        )
        probes.append(json.loads(done.stdout))
    seconds = statistics.median(probe["seconds"] for probe in probes)
    widgets = any(probe["widgets"] for probe in probes)
    report.add(
        "import dmsnb, cold process",
        seconds_text(seconds),
        "loads ipywidgets",
        "yes" if widgets else "no",
        "",
    )
    report.notes.append(
        "import: " + ", ".join(importtime_shares(env, root, ("pandas", "httpx")))
    )
    report.figures["import_seconds"] = seconds


def importtime_shares(
    env: dict[str, str], root: str, modules: tuple[str, ...]
) -> list[str]:
    """The cumulative import time of ``modules`` within ``import dmsnb``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import dmsnb"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=root,
    )
    shares = {}
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].strip()
        if name in modules or name == "dmsnb":
            shares[name] = int(parts[1]) / 1e6
    total = shares.get("dmsnb", math.nan)
    return [f"dmsnb {total * 1000:.0f} ms in all (python -X importtime)"] + [
        f"{name} {shares[name] * 1000:.0f} ms of it"
        for name in modules
        if name in shares
    ]


# -- the report ----------------------------------------------------------------


def print_report(args: argparse.Namespace, report: Report, took: float) -> None:
    versions = (
        f"python {platform.python_version()}, pandas {pd.__version__}, "
        f"httpx {httpx.__version__}, "
        f"huaweicloudsdkkafka {metadata.version('huaweicloudsdkkafka')}"
    )
    default = " (the default)" if args.concurrency == DEFAULT_MAX_WORKERS else ""
    print(f"machine: {os.cpu_count()} cores; {versions}")
    print(
        f"settings: latency {args.latency * 1000:.0f} ms added to every request; "
        f"dmsnb concurrency {args.concurrency}{default}; median of {args.repeat} "
        f"runs ({args.sdk_repeat} for the SDK, the panel and 10,000 or more); "
        "simulator in its own process"
    )
    widths = [32, 10, 34, 10, 20]
    header = ("case", "dmsnb", "peer", "peer", "ratio")

    def line(cells: tuple[str, ...]) -> str:
        padded = (text.ljust(width) for text, width in zip(cells, widths, strict=True))
        return "  ".join(padded).rstrip()

    print(line(header))
    print(line(tuple("-" * width for width in widths)))
    rows = [*report.rows, *report.panel]
    for row in rows:
        cells = (row.case, row.dmsnb, row.peer, row.peer_value, row.ratio)
        print(line(cells))
    for note in report.notes:
        print(f"note: {note}")
    print(f"took {took:.0f} s")
    figures = report.figures
    print(
        f"perf: list2000 ratio_vs_sdk={figures['list2000_ratio_vs_sdk']:.1f} "
        f"ratio_vs_ideal={figures['list2000_ratio_vs_ideal']:.2f}; "
        f"track500 requests={figures['track_requests']:.0f} "
        f"ratio_vs_sdk={figures['track_ratio_vs_sdk']:.1f}"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--latency", type=float, default=0.05, help="seconds added to each request"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_MAX_WORKERS,
        help="dmsnb's max_workers (default: dmsnb's default)",
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs of fast cases")
    parser.add_argument(
        "--sdk-repeat", type=int, default=3, help="runs of the SDK and panel cases"
    )
    parser.add_argument("--track", type=int, default=500, help="instances restarted")
    parser.add_argument(
        "--restart-seconds",
        type=float,
        default=1.0,
        help="how long a simulated restart takes",
    )
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.repeat < 1 or args.sdk_repeat < 1:
        parser.error("--concurrency, --repeat and --sdk-repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import huaweicloudsdkkafka  # noqa: F401
    except ImportError:
        print(
            "the benchmark compares with the official SDK; install it with: "
            "pip install -e '.[test]'",
            file=sys.stderr,
        )
        return 2

    started = time.perf_counter()
    report = Report()
    bench_import(args, report)
    bench_listing(2_000, args, report, plain_peer=True)
    bench_listing(10_000, args, report, panel=True)
    bench_tracking(args, report)
    bench_frames(10_000, args, report)
    bench_frames(100_000, args, report)
    print_report(args, report, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
