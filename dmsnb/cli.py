"""The ``dmsnb`` command.

``dmsnb demo`` runs the main job on a fresh embedded simulator: list the
fleet, restart a few instances, delete one, clean up failed creations, and
print the merged table. ``dmsnb simulator`` serves a simulator until stopped.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

import pandas as pd

from ._frames import merge_results

SHOWN_COLUMNS = [
    "instance_id",
    "name",
    "status_before",
    "action",
    "result",
    "status_after",
    "duration_s",
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dmsnb",
        description="Batch restart and delete of DMS for Kafka instances.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="run the main job on a fresh embedded simulator"
    )
    demo.add_argument("--instances", type=int, default=24, help="fleet size")
    demo.add_argument("--seed", type=int, default=7, help="fleet seed")
    demo.add_argument(
        "--restart-seconds", type=float, default=2.0, help="simulated restart time"
    )
    demo.add_argument(
        "--delete-seconds", type=float, default=2.0, help="simulated delete time"
    )

    commands.add_parser(
        "simulator",
        help="serve a simulator (see 'dmsnb simulator --help')",
        add_help=False,
    )

    args, rest = parser.parse_known_args(argv)
    if args.command == "simulator":
        from .simulator.__main__ import main as simulator_main

        return simulator_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.instances < 4:
        parser.error("--instances must be at least 4 for the demo")
    return run_demo(
        instances=args.instances,
        seed=args.seed,
        restart_seconds=args.restart_seconds,
        delete_seconds=args.delete_seconds,
    )


def run_demo(
    *,
    instances: int = 24,
    seed: int = 7,
    restart_seconds: float = 2.0,
    delete_seconds: float = 2.0,
    out: TextIO = sys.stdout,
) -> int:
    """The quickstart flow in a terminal. Returns the exit status."""
    from .simulator import Simulator, Timings

    say = _printer(out)
    timings = Timings(restart_seconds=restart_seconds, delete_seconds=delete_seconds)
    with Simulator(instances=instances, seed=seed, timings=timings) as sim:
        client = sim.client(audit=None)
        say(f"{client!r}")

        fleet = client.instances(include_failed=True)
        say(f"\nThe fleet: {len(fleet)} instances")
        say(fleet["status"].value_counts().to_string())

        running = fleet[fleet["status"] == "RUNNING"]
        to_restart = list(running["instance_id"][:3])
        to_delete = list(running["instance_id"][3:4])

        say(f"\nRestarting {len(to_restart)} RUNNING instances, following each ...")
        restarted = client.restart(to_restart)
        say(restarted.attrs["summary"])

        plan = client.plan("delete", to_delete)
        say(f"Deleting: {plan.summary()} (confirm={plan.count}) ...")
        deleted = client.execute(plan, confirm=plan.count)
        say(deleted.attrs["summary"])

        say("Deleting the instances whose creation failed ...")
        cleanup = client.delete_failed()
        say(cleanup.attrs["summary"])

    results = pd.concat(
        [frame for frame in (restarted, deleted, cleanup) if len(frame)],
        ignore_index=True,
    )
    merged = merge_results(fleet, results)
    acted = merged[merged["result"].notna()]
    say("\nThe merged table, acted-on rows:")
    say(acted[SHOWN_COLUMNS].to_string(index=False))
    say("\nThe fleet by status before, and result:")
    say(merged.groupby(["status", "result"], dropna=False).size().to_string())

    bad = acted[acted["result"].isin(["failed", "unknown"])]
    if len(bad):
        ids = ", ".join(bad["instance_id"])
        say(f"\n{len(bad)} instance(s) failed or stayed unknown: {ids}")
        return 1
    return 0


def _printer(out: TextIO) -> Callable[[str], None]:
    def say(text: str) -> None:
        print(text, file=out, flush=True)

    return say


if __name__ == "__main__":
    sys.exit(main())
