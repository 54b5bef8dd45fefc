"""Batch operations under mixed faults, checked against the simulator's truth.

Runs a rolling restart of 500 instances and a rolling delete of 200 (waves of
10, going on past failures) on the embedded
simulator while it injects 20 % server errors, 5 % connection resets, 5 %
lost answers, 429 bursts and 2 % stuck instances, then compares every
result row with what the simulator really applied. Ends with one line:

    faults: N instances, lost L, acted twice T, misreported M

Run: ``python benchmarks/faults.py`` (``--help`` for the settings).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass

import pandas as pd

import dmsnb
from dmsnb.simulator import Check, Faults, Simulator, Timings, check_results


@dataclass
class Scenario:
    name: str
    action: str
    instances: int
    check: Check
    results: pd.DataFrame
    seconds: float
    requests: int
    faults: dict[str, int]


def mixed_faults(seed: int) -> Faults:
    return Faults(
        seed=seed,
        latency=0.002,
        server_error_rate=0.20,
        reset_rate=0.05,
        lost_answer_rate=0.05,
        rate_limit_rate=0.01,
        rate_limit_burst=4,
        retry_after=0.05,
        stuck_rate=0.02,
        delete_stuck_rate=0.02,
    )


def run_scenario(
    name: str,
    action: str,
    count: int,
    *,
    seed: int,
    wave_size: int,
    timings: Timings,
    tracking: dmsnb.Tracking,
    audit_dir: str,
) -> Scenario:
    with Simulator(
        instances=count, seed=seed, timings=timings, failed_creations=0, errors=0
    ) as sim:
        client = sim.client(
            tracking=tracking,
            audit=os.path.join(audit_dir, f"{name}.audit.jsonl"),
            max_workers=8,
        )
        fleet = client.instances()
        ids = list(fleet["instance_id"])
        requests_before = sum(sim.requests.values())

        sim.faults = mixed_faults(seed)
        started = time.perf_counter()
        if action == "restart":
            results = client.restart(ids, wave_size=wave_size, stop_on_failure=False)
        else:
            results = client.delete(
                ids, confirm=len(ids), wave_size=wave_size, stop_on_failure=False
            )
        seconds = time.perf_counter() - started
        faults = dict(sim.fault_counts)
        sim.faults = Faults()

        check = check_results(sim, action, ids, results)
        requests = sum(sim.requests.values()) - requests_before
        client.close()
    return Scenario(name, action, count, check, results, seconds, requests, faults)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restart", type=int, default=500, help="instances to restart")
    parser.add_argument("--delete", type=int, default=200, help="instances to delete")
    parser.add_argument("--wave-size", type=int, default=10)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--operation-seconds", type=float, default=0.3)
    parser.add_argument("--timeout", type=float, default=4.0)
    args = parser.parse_args(argv)

    timings = Timings(
        restart_seconds=args.operation_seconds,
        delete_seconds=args.operation_seconds,
        list_hides_deleting_after=args.operation_seconds / 2,
    )
    tracking = dmsnb.Tracking(
        interval=0.05,
        max_interval=0.25,
        settle_seconds=max(0.5, 3 * args.operation_seconds),
        timeout=args.timeout,
    )
    with tempfile.TemporaryDirectory() as audit_dir:
        scenarios = [
            run_scenario(
                "rolling-restart",
                "restart",
                args.restart,
                seed=args.seed,
                wave_size=args.wave_size,
                timings=timings,
                tracking=tracking,
                audit_dir=audit_dir,
            ),
            run_scenario(
                "delete",
                "delete",
                args.delete,
                seed=args.seed + 1,
                wave_size=args.wave_size,
                timings=timings,
                tracking=tracking,
                audit_dir=audit_dir,
            ),
        ]

    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    print(
        f"settings: waves of {args.wave_size}, operation {args.operation_seconds} s, "
        f"tracking timeout {args.timeout} s"
    )
    print(f"faults: {mixed_faults(args.seed).describe()}")
    header = (
        f"{'scenario':<16} {'n':>5} {'success':>8} {'failed':>7} {'skipped':>8} "
        f"{'unknown':>8} {'lost':>5} {'twice':>6} {'misrep':>7} {'requests':>9} "
        f"{'seconds':>8}"
    )
    print(header)
    for s in scenarios:
        counts = s.results["result"].value_counts()
        print(
            f"{s.name:<16} {s.instances:>5} {counts.get('success', 0):>8} "
            f"{counts.get('failed', 0):>7} {counts.get('skipped', 0):>8} "
            f"{counts.get('unknown', 0):>8} {s.check.lost:>5} {s.check.acted_twice:>6} "
            f"{s.check.misreported:>7} {s.requests:>9} {s.seconds:>8.1f}"
        )
    for s in scenarios:
        injected = ", ".join(f"{k} {v}" for k, v in s.faults.items() if v)
        print(f"injected in {s.name}: {injected}")
        reasons = s.results.loc[s.results["result"] != "success", "reason"]
        for reason, n in (
            reasons.str.replace(r"\d+(\.\d+)? s", "N s", regex=True)
            .value_counts()
            .head(6)
            .items()
        ):
            print(f"  {n:>4} x {reason}")
        for wrong in s.check.wrong[:10]:
            print(f"  MISREPORTED {wrong}")

    total = sum(s.instances for s in scenarios)
    lost = sum(s.check.lost for s in scenarios)
    twice = sum(s.check.acted_twice for s in scenarios)
    misreported = sum(s.check.misreported for s in scenarios)
    print(
        f"faults: {total} instances, lost {lost}, acted twice {twice}, "
        f"misreported {misreported}"
    )
    return 0 if lost == twice == misreported == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
