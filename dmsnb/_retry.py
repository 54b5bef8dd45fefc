"""When dmsnb tries a call again, and when it must not.

The whole policy, in one pure function (:func:`decide`):

==========================  ==========================  ========================
what happened               read (list, show)           write (batch action,
                                                        delete)
==========================  ==========================  ========================
connection refused          retry                       retry: it never reached
                                                        the service
429 Too Many Requests       retry after ``Retry-After``  retry after
                            (or the backoff)            ``Retry-After``: the
                                                        gateway refused it
                                                        before the service
400 ``DMS.00400026`` /      no (an answer)              retry, at most
``DMS.00400017`` (busy)                                 ``busy_attempts`` times
5xx                         retry                       never: reconcile
timeout, reset, cut body    retry                       never: reconcile
any other 4xx               never                       never
==========================  ==========================  ========================

Delays grow exponentially from ``base_delay`` up to ``max_delay`` with full
jitter; no retry starts after ``total_seconds`` from the first attempt. A
write that "never" retries is not sent again by anything in dmsnb: its
instances are reconciled by reading their statuses.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

CallKind = Literal["read", "write"]
Failure = Literal["refused", "timeout", "reset", "bad_body", "http"]

BUSY_CODES = frozenset({"DMS.00400026", "DMS.00400017"})


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of the retry policy; the defaults suit a real cloud."""

    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 10.0
    total_seconds: float = 90.0
    busy_attempts: int = 4
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.busy_attempts < 1:
            raise ValueError("attempts and busy_attempts must be at least 1")
        if min(self.base_delay, self.max_delay, self.total_seconds) < 0:
            raise ValueError("delays and total_seconds must not be negative")


NO_RETRY = RetryPolicy(attempts=1, busy_attempts=1)


@dataclass(frozen=True)
class Outcome:
    """What one attempt ended with: an HTTP answer or a transport failure."""

    failure: Failure
    status_code: int | None = None
    error_code: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class Decision:
    retry: bool
    delay: float
    why: str


def decide(
    kind: CallKind,
    outcome: Outcome,
    attempt: int,
    elapsed: float,
    policy: RetryPolicy,
    rng: random.Random | None = None,
) -> Decision:
    """Whether to try again after ``attempt`` (1-based) failed, and when."""
    retryable, why, limit = _classify(kind, outcome, policy)
    if not retryable:
        return Decision(False, 0.0, why)
    if attempt >= limit:
        return Decision(False, 0.0, f"{why}; gave up after {attempt} attempts")

    delay = _backoff(attempt, policy, rng)
    if outcome.retry_after is not None:
        delay = min(max(outcome.retry_after, 0.0), policy.max_retry_after)
    if elapsed + delay > policy.total_seconds:
        return Decision(
            False, 0.0, f"{why}; gave up after {elapsed:.1f} s (limit reached)"
        )
    return Decision(True, delay, why)


def _classify(
    kind: CallKind, outcome: Outcome, policy: RetryPolicy
) -> tuple[bool, str, int]:
    attempts = policy.attempts
    if outcome.failure == "refused":
        return True, "connection refused", attempts
    if outcome.failure in ("timeout", "reset", "bad_body"):
        if kind == "read":
            return True, f"no usable answer ({outcome.failure})", attempts
        return False, f"answer lost after sending ({outcome.failure})", attempts

    status = outcome.status_code or 0
    if status == 429:
        return True, "rate limited (429)", attempts
    if status >= 500:
        if kind == "read":
            return True, f"server error ({status})", attempts
        return False, f"server error ({status}) after sending", attempts
    if kind == "write" and outcome.error_code in BUSY_CODES:
        return True, f"instance busy ({outcome.error_code})", policy.busy_attempts
    return False, f"HTTP {status} is an answer, not a fault", attempts


def _backoff(attempt: int, policy: RetryPolicy, rng: random.Random | None) -> float:
    ceiling = min(policy.max_delay, policy.base_delay * 2.0 ** (attempt - 1))
    draw = rng.random() if rng is not None else random.random()
    # Full jitter, but never less than a tenth of the ceiling.
    return ceiling * (0.1 + 0.9 * draw)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds only)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
