"""The embedded DMS for Kafka service: a real HTTP server on 127.0.0.1.

It answers the v2 and v1.0 instance API in the service's wire format, checks
AK/SK signatures (or a token), and moves instance statuses on a clock::

    from dmsnb.simulator import Simulator

    with Simulator(instances=120, seed=3) as sim:
        client = sim.client()
        fleet = client.instances()

Run it as its own process with ``python -m dmsnb.simulator``.
"""

from __future__ import annotations

import random
import string
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._fleet import ActionRecord, Clock, Fleet, InstanceFilter, Timings
from ._server import (
    LOOPBACK,
    Call,
    DmsService,
    Interceptor,
    Keys,
    LoopbackServer,
    Reply,
    Serve,
    passthrough,
)

if TYPE_CHECKING:
    from .._client import Client

__all__ = [
    "ActionRecord",
    "Call",
    "Fleet",
    "InstanceFilter",
    "Interceptor",
    "Reply",
    "Serve",
    "Simulator",
    "Timings",
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
    AK/SK. ``port=0`` picks a free port.
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
    ) -> None:
        derived = derived_keys(seed)
        keys = Keys(
            ak=ak or derived.ak,
            sk=sk or derived.sk,
            project_id=project_id or derived.project_id,
            token=token,
        )
        self.fleet = Fleet(
            instances=instances,
            seed=seed,
            timings=timings,
            clock=clock,
            failed_creations=failed_creations,
            errors=errors,
        )
        self._service = DmsService(self.fleet, keys)
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
        """A :class:`dmsnb.Client` for this simulator, with AK/SK or the token."""
        from .._client import Client

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
