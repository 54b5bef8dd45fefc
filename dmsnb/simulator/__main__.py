"""``python -m dmsnb.simulator``: serve a simulated DMS until interrupted.

The first line on stdout is the base URL (``http://127.0.0.1:PORT``); a
short line on stderr names the project and the fleet size. SIGINT or SIGTERM
stops the server and the process exits 0. The ``--latency``, ``--*-rate``
and ``--fault-seed`` flags inject faults (see :class:`dmsnb.simulator.Faults`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from . import Faults, Simulator, Timings
from ._faults import SCOPES, field_kind, field_names
from ._server import LOOPBACK, loopback_host

FAULT_HELP = {
    "seed": "seed of the fault draws",
    "latency": "seconds added to every request",
    "latency_jitter": "up to this many seconds more per request (uniform)",
    "latency_on": "requests that are delayed",
    "server_error_rate": "answer 500 or 503 instead of serving (not applied)",
    "server_error_on": "requests that may get a 5xx",
    "rate_limit_rate": "chance that a burst of 429 answers starts (not applied)",
    "rate_limit_burst": "429 answers in a burst, the first included",
    "retry_after": "Retry-After of a 429, in seconds",
    "rate_limit_on": "requests that may be throttled",
    "reset_rate": "reset the connection before serving (not applied)",
    "reset_on": "requests that may be reset",
    "truncate_rate": "serve, then send only half of the body (applied)",
    "truncate_on": "requests whose answer may be truncated",
    "garbage_rate": "serve, then answer 200 with an HTML page (applied)",
    "garbage_on": "requests whose answer may be garbage",
    "lost_answer_rate": "writes: serve, then close without answering (applied)",
    "failed_result_rate": "batch actions: an instance answers failed, not acted on",
    "stuck_rate": "a restarted instance stays RESTARTING forever",
    "restart_error_rate": "a restarted instance goes to ERROR after the restart",
    "delete_error_blip_rate": "a deleted instance shows ERROR mid-delete, then goes",
    "delete_stuck_rate": "a deleted instance stays DELETING forever",
}
"""The help of the fault flags, one per field of :class:`Faults`."""


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


def _rate(value: str) -> float:
    rate = float(value)
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError("a rate is between 0 and 1")
    return rate


def _count(value: str) -> int:
    count = int(value)
    if count < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return count


def fault_flag(name: str) -> str:
    """The command-line flag of a :class:`Faults` field."""
    return "--fault-seed" if name == "seed" else "--" + name.replace("_", "-")


def _add_fault_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "faults", "inject faults (rates are 0..1; nothing is injected by default)"
    )
    defaults = Faults()
    types: dict[str, Any] = {
        "int": int,
        "seconds": _seconds,
        "count": _count,
        "rate": _rate,
    }
    for name in field_names():
        kind = field_kind(name)
        options: dict[str, Any] = {
            "dest": f"fault_{name}",
            "default": getattr(defaults, name),
            "help": FAULT_HELP[name] + " (default %(default)s)",
        }
        if kind == "scope":
            options["choices"] = SCOPES
        else:
            options["type"] = types[kind]
            options["metavar"] = "N" if kind in ("int", "count") else "X"
        group.add_argument(fault_flag(name), **options)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(
            f"port {port} is out of range; give 0 (any free port) to 65535"
        )
    return port


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
    add("--port", type=_port, default=0, help="0 picks a free port (default)")
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
    _add_iam_flags(parser)
    _add_fault_flags(parser)
    return parser


def _add_iam_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "IAM", "password logins: POST /v3/auth/tokens issues tokens"
    )
    group.add_argument(
        "--password", help="serve an IAM with one user, 'dmsnb', and this password"
    )
    group.add_argument(
        "--token-lifetime",
        type=_seconds,
        default=86400.0,
        help="seconds an issued token lasts (default %(default)s)",
    )
    group.add_argument(
        "--clouds-yaml",
        metavar="PATH",
        help="write a clouds.yaml with a cloud 'simulator' for this simulator "
        "(a password entry with --password, else AK/SK); readable by you only",
    )


def faults_from_args(args: argparse.Namespace) -> Faults:
    """The :class:`Faults` the parsed fault flags describe."""
    return Faults(**{name: getattr(args, f"fault_{name}") for name in field_names()})


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
        faults=faults_from_args(args),
        password=getattr(args, "password", None),
        token_lifetime=getattr(args, "token_lifetime", 86400.0),
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


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Serve until SIGINT or SIGTERM; return the exit status."""
    parser = build_parser(prog) if prog else build_parser()
    args = parser.parse_args(argv)
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
            clouds_yaml = getattr(args, "clouds_yaml", None)
            if clouds_yaml:
                auth = "password" if sim.identity_enabled else "aksk"
                written = sim.write_clouds_yaml(clouds_yaml, auth=auth)
                print(
                    f"dmsnb simulator: wrote cloud 'simulator' ({auth}) to {written}",
                    file=sys.stderr,
                    flush=True,
                )
            if sim.faults.active:
                print(
                    f"dmsnb simulator: injecting faults: {sim.faults.describe()}",
                    file=sys.stderr,
                    flush=True,
                )
            if not args.sk:
                print(
                    "dmsnb simulator: the secret key is derived from the seed: "
                    f"dmsnb.simulator.derived_keys({args.seed}).sk in Python, "
                    "or pass --sk to choose one",
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
