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

import json
import random
import string
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._faults import FaultInjector, Faults
from ._fleet import ActionRecord, Clock, Fleet, InstanceFilter, Timings
from ._iam import Identity
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
    from .._credentials import Credentials
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
    AK/SK. ``users`` (``{"name": "password"}``, or ``password=`` for one
    user named ``dmsnb``) adds an IAM: ``POST /v3/auth/tokens`` issues
    tokens that last ``token_lifetime`` seconds of ``clock``, for users of
    the domain ``domain_name`` and the project (by id, or by
    ``project_name``). ``port=0`` picks a free port. ``faults`` (a :class:`Faults`,
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
        users: Mapping[str, str] | None = None,
        password: str | None = None,
        token_lifetime: float = 86400.0,
        domain_name: str = "dmsnb-simulated-domain",
        project_name: str = "eu-de_dmsnb-simulated",
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
        self._users = dict(users or {})
        if password is not None:
            self._users.setdefault("dmsnb", password)
        identity = _identity(
            self._users,
            domain_name=domain_name,
            project_id=keys.project_id,
            project_name=project_name,
            lifetime=token_lifetime,
            clock=clock or time.monotonic,
        )
        self._service = DmsService(
            self.fleet, keys, faults=self._injector, identity=identity
        )
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
        if auth == "password":
            if not self.identity_enabled:
                raise ValueError(
                    "auth='password' needs an IAM, and this simulator has none; "
                    "create it with users={...} or password=..."
                )
            common.pop("project_id")
            return Client(**common, credentials=self.password_credentials(), **kwargs)
        raise ValueError(f"auth must be 'aksk', 'token' or 'password', not {auth!r}")

    # -- IAM ---------------------------------------------------------------------

    @property
    def iam_url(self) -> str:
        """The ``auth_url`` of the simulated IAM: ``http://127.0.0.1:PORT/v3``."""
        return self.base_url + "/v3"

    @property
    def identity_enabled(self) -> bool:
        """True when the simulator serves password logins (an IAM)."""
        return self._service.identity is not None

    @property
    def identity(self) -> Identity:
        """The simulated IAM (``users=`` or ``password=`` must have been given)."""
        identity = self._service.identity
        if identity is None:
            raise ValueError(
                "this simulator has no IAM; create it with users={...} or password=..."
            )
        return identity

    def revoke_tokens(self) -> None:
        """Invalidate every token issued so far, as a password change does."""
        self.identity.revoke_all()

    def password_credentials(
        self, user: str | None = None, **options: Any
    ) -> Credentials:
        """:class:`dmsnb.Credentials` that log in as ``user`` (the first one).

        ``options`` go to the token provider (``refresh_margin`` ...).
        """
        from .._credentials import Credentials
        from .._iam import PasswordLogin

        name, password = self._user(user)
        login = PasswordLogin(
            auth_url=self.iam_url,
            username=name,
            password=password,
            domain_name=self.identity.domain_name,
            project_id=self.project_id,
        )
        return Credentials.from_password(
            login, source="simulator IAM (password)", **options
        )

    def write_clouds_yaml(
        self, path: str | Path, *, cloud: str = "simulator", auth: str = "password"
    ) -> Path:
        """Write a ``clouds.yaml`` with one cloud for this simulator; its path.

        ``auth`` is ``password`` (the first user, the project by name) or
        ``aksk``; ``dms_endpoint_override`` points at this simulator. The
        file is readable by its owner only, as it holds a secret.
        """
        entry: dict[str, Any] = {
            "region_name": "eu-de",
            "dms_endpoint_override": self.base_url,
        }
        if auth == "password":
            name, password = self._user(None)
            entry["auth"] = {
                "auth_url": self.iam_url,
                "username": name,
                "password": password,
                "user_domain_name": self.identity.domain_name,
                "project_name": self.identity.project_name,
            }
        elif auth == "aksk":
            entry["auth"] = {
                "ak": self.ak,
                "sk": self.sk,
                "project_id": self.project_id,
            }
        else:
            raise ValueError(f"auth must be 'password' or 'aksk', not {auth!r}")
        # JSON is YAML: no YAML writer is needed for this one mapping.
        return _write_secret(
            Path(path), json.dumps({"clouds": {cloud: entry}}, indent=2)
        )

    def write_credentials_file(
        self, path: str | Path, *, section: str = "basic"
    ) -> Path:
        """Write an SDK credentials file with this simulator's keys; its path.

        The section also names this simulator as its ``endpoint``.
        """
        text = (
            f"[{section}]\nak = {self.ak}\nsk = {self.sk.replace('%', '%%')}\n"
            f"project_id = {self.project_id}\nendpoint = {self.base_url}\n"
        )
        return _write_secret(Path(path), text)

    def _user(self, user: str | None) -> tuple[str, str]:
        users = self._users
        if not users:
            raise ValueError(
                "this simulator has no IAM; create it with users={...} or password=..."
            )
        name = user or next(iter(users))
        if name not in users:
            raise ValueError(f"no simulated user {name!r}; there are {sorted(users)}")
        return name, users[name]

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


def _identity(
    users: Mapping[str, str],
    *,
    domain_name: str,
    project_id: str,
    project_name: str,
    lifetime: float,
    clock: Clock,
) -> Identity | None:
    if not users:
        return None
    return Identity(
        users,
        domain_name=domain_name,
        project_id=project_id,
        project_name=project_name,
        lifetime=lifetime,
        clock=clock,
    )


def _write_secret(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text, encoding="utf-8")
    return path
