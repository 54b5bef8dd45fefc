"""``python -m dmsnb.simulator``: serve a simulated DMS until interrupted.

The first line on stdout is the base URL (``http://127.0.0.1:PORT``); a
short line on stderr names the project and the fleet size. SIGINT or SIGTERM
stops the server and the process exits 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from . import Simulator, Timings
from ._server import LOOPBACK, loopback_host


def _host(value: str) -> str:
    try:
        return loopback_host(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _seconds(value: str) -> float:
    seconds = float(value)
    if seconds < 0:
        raise argparse.ArgumentTypeError("seconds must not be negative")
    return seconds


def build_parser(prog: str = "python -m dmsnb.simulator") -> argparse.ArgumentParser:
    """The command line of the simulator (reused by ``dmsnb simulator``)."""
    defaults = Timings()
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve a simulated DMS for Kafka instance API on 127.0.0.1.",
    )
    add = parser.add_argument
    add(
        "--host",
        type=_host,
        default=LOOPBACK,
        help="loopback only (default %(default)s)",
    )
    add("--port", type=int, default=0, help="0 picks a free port (default)")
    add("--ak", help="access key to accept (default: derived from the seed)")
    add("--sk", help="secret key to accept (default: derived from the seed)")
    add("--project-id", help="project id to serve (default: derived from the seed)")
    add("--token", help="also accept this IAM token as X-Auth-Token")
    add("--instances", type=int, default=40, help="fleet size (default %(default)s)")
    add("--seed", type=int, default=7, help="fleet seed (default %(default)s)")
    add("--failed-creations", type=int, help="exact number of CREATEFAILED instances")
    add("--errors", type=int, help="exact number of ERROR instances")
    add("--restart-seconds", type=_seconds, default=defaults.restart_seconds)
    add("--delete-seconds", type=_seconds, default=defaults.delete_seconds)
    add(
        "--list-hides-deleting-after",
        type=_seconds,
        default=defaults.list_hides_deleting_after,
    )
    add("--recycle-bin", action="store_true", help="deleted instances go to RECYCLE")
    return parser


def simulator_from_args(args: argparse.Namespace) -> Simulator:
    """A (not yet started) simulator as the parsed arguments describe it."""
    timings = Timings(
        restart_seconds=args.restart_seconds,
        delete_seconds=args.delete_seconds,
        list_hides_deleting_after=args.list_hides_deleting_after,
        recycle_bin=args.recycle_bin,
    )
    return Simulator(
        instances=args.instances,
        seed=args.seed,
        ak=args.ak,
        sk=args.sk,
        project_id=args.project_id,
        token=args.token,
        timings=timings,
        port=args.port,
        failed_creations=args.failed_creations,
        errors=args.errors,
        host=args.host,
    )


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set ``stop`` on SIGINT and SIGTERM (main thread only), then restore."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {
        sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        sim = simulator_from_args(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()
    with _stop_on_signals(stop):
        try:
            sim.start()
        except OSError as error:
            print(
                f"error: cannot listen on {args.host}:{args.port}: {error}",
                file=sys.stderr,
            )
            return 1
        try:
            print(sim.base_url, flush=True)
            print(
                f"dmsnb simulator: project {sim.project_id}, "
                f"{len(sim.fleet)} instances, access key {sim.ak}; "
                "stop with Ctrl-C",
                file=sys.stderr,
                flush=True,
            )
            while not stop.wait(0.5):
                pass
        finally:
            sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
