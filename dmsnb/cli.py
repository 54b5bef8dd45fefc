"""The ``dmsnb`` command.

``dmsnb demo`` runs the main job on a fresh embedded simulator: list the
fleet, restart a few instances, delete one, clean up failed creations, and
print the merged table. ``dmsnb simulator`` serves a simulator until stopped.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO

import pandas as pd

from ._client import Client
from ._errors import NotFoundError
from ._frames import merge_results

SHOWN_COLUMNS = ["instance_id", "name", "status", "action", "result", "reason"]


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

    timings = Timings(restart_seconds=restart_seconds, delete_seconds=delete_seconds)
    with Simulator(instances=instances, seed=seed, timings=timings) as sim:
        client = sim.client()
        say = _printer(out)
        say(f"{client!r}")

        fleet = client.instances(include_failed=True)
        say(f"\nThe fleet: {len(fleet)} instances")
        say(fleet["status"].value_counts().to_string())

        running = fleet[fleet["status"] == "RUNNING"]
        to_restart = list(running["instance_id"][:3])
        to_delete = list(running["instance_id"][3:4])
        say(f"\nRestarting {len(to_restart)} RUNNING instances ...")
        restarted = client.restart(to_restart)
        say(restarted.attrs["summary"])

        say(f"Deleting {len(to_delete)} instance (confirm={len(to_delete)}) ...")
        deleted = client.delete(to_delete, confirm=len(to_delete))
        say(deleted.attrs["summary"])

        say("Deleting the instances whose creation failed ...")
        cleanup = client.delete_failed()
        say(cleanup.attrs["summary"])

        deadline = restart_seconds + delete_seconds + 30.0
        settled = wait_for(client, to_restart, to_delete, timeout=deadline)
        say("All acted-on instances settled." if settled else "Timed out waiting.")

        results = pd.concat([restarted, deleted], ignore_index=True)
        current = client.instances(include_failed=True)
        merged = merge_results(current, results)
        acted = merged[merged["result"].notna()]
        say("\nThe merged table, acted-on rows:")
        say(acted[SHOWN_COLUMNS].to_string(index=False))
        say(f"\nNow {len(current)} instances; results by status:")
        say(merged.groupby(["status", "result"], dropna=False).size().to_string())
    failed = results["result"].isin(["failed", "unknown"]).sum()
    return 0 if settled and failed == 0 else 1


def wait_for(
    client: Client,
    restarted: Sequence[str],
    deleted: Sequence[str],
    *,
    timeout: float,
    interval: float = 0.5,
) -> bool:
    """Poll until the restarted instances run again and the deleted ones are gone.

    A plain loop for the demo; it does not replace per-instance tracking.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fleet = client.instances(include_failed=True)
        status = dict(zip(fleet["instance_id"], fleet["status"], strict=True))
        back = all(status.get(i) == "RUNNING" for i in restarted)
        if back and all(_is_gone(client, i) for i in deleted):
            return True
        time.sleep(interval)
    return False


def _is_gone(client: Client, instance_id: str) -> bool:
    # A deleted instance can leave the list before it is gone; only a 404 on
    # the instance itself says it is.
    try:
        client.instance(instance_id)
    except NotFoundError:
        return True
    return False


def _printer(out: TextIO) -> Callable[[str], None]:
    def say(text: str) -> None:
        print(text, file=out, flush=True)

    return say


if __name__ == "__main__":
    sys.exit(main())
