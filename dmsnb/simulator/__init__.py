"""The embedded DMS for Kafka service: a real HTTP server on 127.0.0.1.

It answers the v2 and v1.0 instance API in the service's wire format, checks
AK/SK signatures (or a token), and moves instance statuses on a clock::

    from dmsnb.simulator import Simulator

    with Simulator(instances=120, seed=3) as sim:
        client = sim.client()
        fleet = client.instances()

Faults are settings: ``Simulator(faults=Faults(server_error_rate=0.1))``,
or ``sim.faults = Faults(...)`` while it runs; ``sim.fault_counts`` says
what was injected and ``sim.action_log`` what the fleet really did.

Run it as its own process with ``python -m dmsnb.simulator``.
"""

from __future__ import annotations

import random
import string
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._faults import FaultInjector, Faults
from ._fleet import ActionRecord, Clock, Fleet, InstanceFilter, Timings
from ._server import (
    LOOPBACK,
    RESET,
    Call,
    DmsService,
    Interceptor,
    Keys,
    LoopbackServer,
    Reply,
    Serve,
    passthrough,
)
from ._truth import Check, check_results

if TYPE_CHECKING:
    from .._client import Client
    from .._run import Tracking

__all__ = [
    "RESET",
    "ActionRecord",
    "Call",
    "Check",
    "Faults",
    "Fleet",
    "InstanceFilter",
    "Interceptor",
    "Reply",
    "Serve",
    "Simulator",
    "Timings",
    "check_results",
    "derived_keys",
    "passthrough",
]


def derived_keys(seed: int) -> Keys:
    """The project id, AK and SK a simulator uses for ``seed`` unless told."""
    rng = random.Random(f"dmsnb-simulator-keys:{seed}")
    alnum = string.ascii_uppercase + string.digits
    project_id = "".join(rng.choice("0123456789abcdef") for _ in range(32))
    ak = "".join(rng.choice(alnum) for _ in range(20))
    sk = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(40))
    return Keys(ak=ak, sk=sk, project_id=project_id)


class Simulator:
    """A simulated DMS service with a seeded fleet, served on 127.0.0.1.

    ``failed_creations`` and ``errors`` fix the number of CREATEFAILED and
    ERROR instances (every other one is then RUNNING). ``clock`` drives the
    status transitions (default ``time.monotonic``); ``timings`` sets how
    long they take. ``token`` enables IAM-token authentication besides
    AK/SK. ``port=0`` picks a free port. ``faults`` (a :class:`Faults`,
    changeable as :attr:`faults`) injects faults; the default injects none.
    """

    def __init__(
        self,
        *,
        instances: int = 40,
        seed: int = 7,
        ak: str | None = None,
        sk: str | None = None,
        project_id: str | None = None,
        token: str | None = None,
        timings: Timings | None = None,
        port: int = 0,
        clock: Clock | None = None,
        failed_creations: int | None = None,
        errors: int | None = None,
        host: str = LOOPBACK,
        faults: Faults | None = None,
    ) -> None:
        derived = derived_keys(seed)
        keys = Keys(
            ak=ak or derived.ak,
            sk=sk or derived.sk,
            project_id=project_id or derived.project_id,
            token=token,
        )
        self._injector = FaultInjector(faults)
        self.fleet = Fleet(
            instances=instances,
            seed=seed,
            timings=timings,
            clock=clock,
            failed_creations=failed_creations,
            errors=errors,
            outcomes=self._injector,
        )
        self._service = DmsService(self.fleet, keys, faults=self._injector)
        self._server = LoopbackServer(self._service, host=host, port=port)

    def __repr__(self) -> str:
        where = self._server.base_url if self._server.running else "not running"
        return (
            f"<dmsnb Simulator {where} project={self.project_id} "
            f"instances={len(self.fleet)}>"
        )

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> Simulator:
        """Serve in a background thread; ready to answer when this returns."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port; safe to call more than once."""
        self._server.stop()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what a client needs ---------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (the simulator must be running)."""
        return self._server.base_url

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def ak(self) -> str:
        return self._service.keys.ak

    @property
    def sk(self) -> str:
        """The secret key (for tests and demos; never shown in ``repr``)."""
        return self._service.keys.sk

    @property
    def project_id(self) -> str:
        return self._service.keys.project_id

    @property
    def token(self) -> str | None:
        return self._service.keys.token

    def client(
        self, api_version: str = "v2", auth: str = "aksk", **kwargs: Any
    ) -> Client:
        """A :class:`dmsnb.Client` for this simulator, with AK/SK or the token.

        Unless given, ``tracking`` follows instances at the pace of the
        simulated restart and delete times (:meth:`tracking`), ``retry``
        waits briefly (0.05 s to 0.5 s, 20 s in all), and ``audit`` is off
        (pass ``audit="path.audit.jsonl"`` to keep a trail of simulated
        runs).
        """
        from .._client import Client
        from .._retry import RetryPolicy

        kwargs.setdefault("tracking", self.tracking())
        kwargs.setdefault("audit", None)
        kwargs.setdefault(
            "retry", RetryPolicy(base_delay=0.05, max_delay=0.5, total_seconds=20)
        )
        common: dict[str, Any] = {
            "endpoint": self.base_url,
            "project_id": self.project_id,
            "api_version": api_version,
            "simulator": True,
        }
        if auth == "aksk":
            return Client(**common, ak=self.ak, sk=self.sk, **kwargs)
        if auth == "token":
            if self.token is None:
                raise ValueError(
                    "this simulator has no token; create it with token=..."
                )
            return Client(**common, token=self.token, **kwargs)
        raise ValueError(f"auth must be 'aksk' or 'token', not {auth!r}")

    def tracking(self) -> Tracking:
        """A :class:`dmsnb.Tracking` paced for this simulator's timings."""
        from .._run import Tracking

        timings = self.fleet.timings
        shortest = min(timings.restart_seconds, timings.delete_seconds)
        longest = max(timings.restart_seconds, timings.delete_seconds)
        interval = max(0.02, shortest / 4)
        return Tracking(
            interval=interval,
            max_interval=max(interval, shortest),
            settle_seconds=max(0.5, 2 * timings.restart_seconds),
            timeout=max(30.0, 20 * longest),
        )

    # -- faults ------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The faults injected now; assign a new :class:`Faults` to change them."""
        return self._injector.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._injector.faults = faults

    @property
    def fault_counts(self) -> dict[str, int]:
        """Faults injected so far per kind, e.g. ``{"server_error": 3, ...}``."""
        return self._injector.counts

    # -- what the simulator saw and did ----------------------------------------

    @property
    def requests(self) -> dict[tuple[str, str], int]:
        """Requests received per ``(method, route kind)``, e.g. ``("GET", "list")``."""
        return self._service.requests

    @property
    def action_log(self) -> tuple[ActionRecord, ...]:
        """Every action applied to an instance, oldest first."""
        return self.fleet.action_log

    @property
    def interceptor(self) -> Interceptor:
        """The fault-injection hook every request passes through."""
        return self._service.interceptor

    @interceptor.setter
    def interceptor(self, interceptor: Interceptor) -> None:
        self._service.interceptor = interceptor
