"""Fault injection for the simulator: each fault a setting of :class:`Faults`.

Two places inject faults. The **request layer** (:class:`FaultInjector` as
the outer layer of :meth:`DmsService.handle`) delays requests, answers in
place of the service (5xx, 429, a reset) or spoils the answer after the
service acted (lost, truncated, not JSON). The **fleet hooks** (the same
injector as the fleet's :class:`~._fleet.Outcomes`) decide per instance,
while the fleet applies a batch action, whether the instance answers
``failed`` instead, and how an applied action ends (stuck, ERROR).

What the fleet really did stays exact: ``Simulator.action_log`` lists an
instance only when an action was applied to it, once per application.

Every decision is a draw from a counter-based generator keyed by the seed,
the fault, what the decision is about (the request's method, path, query
and body, or the action and instance) and how many times that same thing
was decided before. So the same requests meet the same faults in every run,
also when concurrent requests arrive in another order; only the 429 bursts
(the requests *following* a draw) depend on the arrival order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Literal

from ._fleet import Outcome
from ._server import READS, RESET, WRITES, Call, Reply, error_reply

Scope = Literal["all", "reads", "writes"]
SCOPES: tuple[Scope, ...] = ("all", "reads", "writes")
"""Which requests a fault may hit: every one, list/show, or batch
action/single delete."""

KINDS = (
    "latency",
    "server_error",
    "rate_limit",
    "rate_limit_burst",
    "reset",
    "truncate",
    "garbage",
    "lost_answer",
    "failed_result",
    "stuck",
    "restart_error",
    "delete_error_blip",
    "delete_stuck",
)
"""The names of :attr:`FaultInjector.counts`, in a stable order."""

API_KINDS = READS | WRITES

GARBAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head>"
    b"<body><h1>The service is under maintenance</h1>"
    b"<p>Please try again later.</p><hr><address>gateway</address>"
    b"</body></html>\n"
)
"""The body of a ``garbage`` answer: an HTML error page, with status 200."""


@dataclass(frozen=True)
class Faults:
    """The faults a simulator injects; the default injects none.

    Rates are probabilities (0..1) per request, or per instance for the
    ``failed_result`` and outcome faults. A ``*_on`` field limits a fault to
    ``"reads"`` (list, show) or ``"writes"`` (batch action, single delete);
    ``"all"`` is every API request. Change them at run time with
    ``sim.faults = Faults(...)``.
    """

    seed: int = 0
    """Seed of the fault draws: the same seed, the same faults."""

    latency: float = 0.0
    """Seconds added to every request, slept in the request's own thread."""
    latency_jitter: float = 0.0
    """Up to this many seconds more, drawn uniformly per request."""
    latency_on: Scope = "all"

    server_error_rate: float = 0.0
    """Answer 500 or 503 instead of serving: nothing is applied."""
    server_error_on: Scope = "all"

    rate_limit_rate: float = 0.0
    """Chance per request that a burst of 429 answers starts (not applied)."""
    rate_limit_burst: int = 5
    """Requests answered 429 in one burst: the one that started it and the
    next ones in ``rate_limit_on``, whatever their draws."""
    retry_after: float = 1.0
    """The ``Retry-After`` of a 429, in seconds (fractions allowed)."""
    rate_limit_on: Scope = "all"

    reset_rate: float = 0.0
    """Reset the connection before serving: nothing is applied."""
    reset_on: Scope = "all"

    truncate_rate: float = 0.0
    """Serve (applied), then send the full Content-Length but half the body."""
    truncate_on: Scope = "all"

    garbage_rate: float = 0.0
    """Serve (applied), then answer 200 with an HTML page instead of JSON."""
    garbage_on: Scope = "all"

    lost_answer_rate: float = 0.0
    """Writes only: serve (applied), then close without an answer."""

    failed_result_rate: float = 0.0
    """Batch actions, per instance: answer ``failed`` and do not act on it."""

    stuck_rate: float = 0.0
    """Per restarted instance: it stays RESTARTING forever."""
    restart_error_rate: float = 0.0
    """Per restarted instance: ERROR instead of RUNNING after the restart."""
    delete_error_blip_rate: float = 0.0
    """Per deleted instance: ERROR in the middle third of the delete, then
    DELETING again and gone as usual."""
    delete_stuck_rate: float = 0.0
    """Per deleted instance: it stays DELETING forever."""

    def __post_init__(self) -> None:
        for name in field_names():
            value = getattr(self, name)
            kind = field_kind(name)
            if kind == "rate" and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value}")
            if kind == "seconds" and not value >= 0.0:
                raise ValueError(f"{name} must not be negative, not {value}")
            if kind == "count" and value < 1:
                raise ValueError(f"{name} must be at least 1, not {value}")
            if kind == "scope" and value not in SCOPES:
                raise ValueError(
                    f"{name} must be one of {', '.join(SCOPES)}, not {value!r}"
                )
        for first, second in (
            ("stuck_rate", "restart_error_rate"),
            ("delete_error_blip_rate", "delete_stuck_rate"),
        ):
            if getattr(self, first) + getattr(self, second) > 1.0:
                raise ValueError(f"{first} + {second} must not exceed 1")

    @property
    def active(self) -> bool:
        """Whether any fault can happen at all."""
        rates = (getattr(self, n) for n in field_names() if field_kind(n) == "rate")
        return self.latency > 0 or self.latency_jitter > 0 or any(r > 0 for r in rates)

    def describe(self) -> str:
        """The settings that differ from the defaults, e.g. ``latency=0.05``."""
        default = Faults()
        changed = [
            f"{name}={getattr(self, name)}"
            for name in field_names()
            if getattr(self, name) != getattr(default, name)
        ]
        return ", ".join(changed) or "none"


FieldKind = Literal["int", "seconds", "count", "rate", "scope"]


def field_names() -> tuple[str, ...]:
    """The fields of :class:`Faults`, in order."""
    return tuple(spec.name for spec in dataclasses.fields(Faults))


def field_kind(name: str) -> FieldKind:
    """What a field of :class:`Faults` holds (for checks and the command line)."""
    if name.endswith("_rate"):
        return "rate"
    if name.endswith("_on"):
        return "scope"
    if name == "rate_limit_burst":
        return "count"
    if name == "seed":
        return "int"
    return "seconds"


def _unit(seed: int, key: Hashable) -> float:
    """A draw in [0, 1), the same for the same seed and key."""
    digest = hashlib.blake2b(repr((seed, key)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _in_scope(scope: Scope, kind: str) -> bool:
    if scope == "reads":
        return kind in READS
    if scope == "writes":
        return kind in WRITES
    return True


def _seconds_text(seconds: float) -> str:
    """``1``, ``0.2``: the shortest decimal, for a header."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") or "0"


class FaultInjector:
    """Injects what a :class:`Faults` describes; thread-safe.

    Use it as the fault layer of :class:`~._server.DmsService` and as the
    fleet's outcomes. ``sleep`` waits out the latency (in the handler thread
    of each request, so concurrent requests wait side by side).
    """

    def __init__(
        self,
        faults: Faults | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._faults = faults or Faults()
        self._sleep = sleep
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._seen: Counter[Hashable] = Counter()
        self._burst: tuple[Faults, int] | None = None

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        if not isinstance(faults, Faults):
            raise TypeError(f"expected Faults, not {type(faults).__name__}")
        with self._lock:
            self._faults = faults
            self._burst = None  # a new setting ends a burst under way

    @property
    def counts(self) -> dict[str, int]:
        """Faults injected so far per kind (every kind, zeros included)."""
        with self._lock:
            return {kind: self._counts[kind] for kind in KINDS}

    # -- drawing -------------------------------------------------------------

    def _occurrence(self, key: Hashable) -> int:
        """How many times ``key`` was decided before (and count this one)."""
        with self._lock:
            seen = self._seen[key]
            self._seen[key] = seen + 1
            return seen

    def _count(self, kind: str) -> None:
        with self._lock:
            self._counts[kind] += 1

    def _hit(self, faults: Faults, rate: float, name: str, key: Hashable) -> bool:
        """Draw for fault ``name`` about ``key``; count it when it hits."""
        if rate <= 0.0:
            return False
        hit = _unit(faults.seed, (name, key)) < rate
        if hit:
            self._count(name)
        return hit

    # -- the request layer ------------------------------------------------------

    def __call__(self, call: Call, serve: Callable[[], Reply | None]) -> Reply | None:
        """Serve ``call`` through the faults of the current setting."""
        faults = self._faults
        if not faults.active:
            return serve()
        kind = call.route.kind
        body = hashlib.sha256(call.body).hexdigest()
        request = (call.method, call.path, call.query, body)
        key = (request, self._occurrence(("request", request)))

        if _in_scope(faults.latency_on, kind) and (
            faults.latency > 0 or faults.latency_jitter > 0
        ):
            jitter = faults.latency_jitter * _unit(faults.seed, ("jitter", key))
            self._count("latency")
            self._sleep(faults.latency + jitter)

        if kind not in API_KINDS:
            return serve()
        early = self._before_serving(faults, call, key)
        if early is not None:
            return early
        reply = serve()
        if reply is None or reply.reset:
            return reply
        return self._after_serving(faults, kind, reply, key)

    def _before_serving(
        self, faults: Faults, call: Call, key: Hashable
    ) -> Reply | None:
        kind = call.route.kind
        if _in_scope(faults.rate_limit_on, kind) and self._throttled(faults, key):
            reply = error_reply("APIGW.0308", request_id=call.request_id)
            retry_after = ("Retry-After", _seconds_text(faults.retry_after))
            return dataclasses.replace(reply, headers=(retry_after,))
        if _in_scope(faults.server_error_on, kind) and self._hit(
            faults, faults.server_error_rate, "server_error", key
        ):
            unavailable = _unit(faults.seed, ("server_error_status", key)) < 0.5
            return error_reply("DMS.111501025" if unavailable else "DMS.00500000")
        if _in_scope(faults.reset_on, kind) and self._hit(
            faults, faults.reset_rate, "reset", key
        ):
            return RESET
        return None

    def _throttled(self, faults: Faults, key: Hashable) -> bool:
        with self._lock:
            burst = self._burst
            if burst is not None and burst[0] is faults and burst[1] > 0:
                self._burst = (faults, burst[1] - 1)
                self._counts["rate_limit"] += 1
                return True
        rate = faults.rate_limit_rate
        if rate <= 0.0 or _unit(faults.seed, ("rate_limit", key)) >= rate:
            return False
        with self._lock:
            if self._faults is faults:
                self._burst = (faults, faults.rate_limit_burst - 1)
            self._counts["rate_limit_burst"] += 1
            self._counts["rate_limit"] += 1
        return True

    def _after_serving(
        self, faults: Faults, kind: str, reply: Reply, key: Hashable
    ) -> Reply | None:
        if kind in WRITES and self._hit(
            faults, faults.lost_answer_rate, "lost_answer", key
        ):
            return None
        if _in_scope(faults.truncate_on, kind) and self._hit(
            faults, faults.truncate_rate, "truncate", key
        ):
            return dataclasses.replace(reply, truncated=True)
        if _in_scope(faults.garbage_on, kind) and self._hit(
            faults, faults.garbage_rate, "garbage", key
        ):
            return Reply(200, GARBAGE, content_type="text/html; charset=utf-8")
        return reply

    # -- the fleet hooks ---------------------------------------------------------

    def refuses(self, action: str, instance_id: str) -> bool:
        """A batch action answers ``failed`` for this instance (not applied)."""
        faults = self._faults
        if faults.failed_result_rate <= 0.0:
            return False
        about = ("failed_result", action, instance_id)
        key = (about, self._occurrence(about))
        return self._hit(faults, faults.failed_result_rate, "failed_result", key)

    def outcome(self, action: str, instance_id: str) -> Outcome:
        """How the action just applied to the instance ends."""
        faults = self._faults
        if action == "restart":
            choices: tuple[tuple[str, float, Outcome], ...] = (
                ("stuck", faults.stuck_rate, "stuck"),
                ("restart_error", faults.restart_error_rate, "error"),
            )
        else:
            choices = (
                ("delete_stuck", faults.delete_stuck_rate, "stuck"),
                ("delete_error_blip", faults.delete_error_blip_rate, "error_blip"),
            )
        if all(rate <= 0.0 for _, rate, _ in choices):
            return "normal"
        about = ("outcome", action, instance_id)
        draw = _unit(faults.seed, (about, self._occurrence(about)))
        bound = 0.0
        for name, rate, outcome in choices:
            bound += rate
            if draw < bound:
                self._count(name)
                return outcome
        return "normal"
