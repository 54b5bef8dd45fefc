"""Executing a plan: send, reconcile, follow every instance until it settles.

A :class:`Run` acts only on the allowed rows of its plan, in waves when
asked (a rolling restart), and keeps exactly one result row per planned
instance from the start, so that whatever stops it (the end, a cancel, a
crash or a kernel interrupt) the rows say what is known:

=========  ==============================================================
result     meaning
=========  ==============================================================
success    the service accepted the action and the instance settled:
           RUNNING again after a restart; gone (404) or in the Recycle
           Bin after a delete
failed     the service refused or never got the call; or its answer was
           lost and the instance kept its status through the settle time
           (not acted); or it went to ERROR (restart) or did not settle
           before the timeout
skipped    the plan did not allow it, or the run stopped before its wave
unknown    the call was sent and its answer lost, and the statuses read
           until the timeout cannot tell whether the service acted; or
           tracking stopped (cancel, interrupt) before it settled
=========  ==============================================================

A write is never sent twice: a lost answer is reconciled by reading the
instances' statuses, not by sending again.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
else:
    from ._lazy import pd

from . import _api
from ._audit import AuditTrail, new_run_id, who
from ._errors import APIError, AuthError, DMSError, NotFoundError, TransportError
from ._frames import results_frame
from ._plan import Plan

if TYPE_CHECKING:
    from ._client import ActionAnswer, Client

logger = logging.getLogger(__name__)

_PLAN_USE = threading.Lock()

GONE = "<gone>"
"""The status of an instance whose show call answered 404."""


class PlanError(DMSError, ValueError):
    """The plan cannot be executed as it is; nothing was sent."""


@dataclass(frozen=True)
class Tracking:
    """How instances are followed after the service accepted an action.

    Each round reads the whole list once (or, when fewer instances are
    pending than the list has pages, asks for each by id) and asks by id for
    the pending instances missing from the list. Rounds start ``interval``
    seconds apart and back off by ``backoff`` up to ``max_interval``.
    """

    timeout: float = 1800.0
    settle_seconds: float = 60.0
    interval: float = 2.0
    max_interval: float = 20.0
    backoff: float = 1.5

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.interval <= 0 or self.settle_seconds < 0:
            raise ValueError(
                "timeout and interval must be positive, settle_seconds >= 0"
            )
        if self.backoff < 1 or self.max_interval < self.interval:
            raise ValueError("backoff must be >= 1 and max_interval >= interval")


@dataclass
class _Instance:
    """One planned instance's state during a run."""

    instance_id: str
    row: dict[str, Any]
    state: str = "planned"  # planned, sending, accepted, unconfirmed, done
    accepted_at: float = 0.0
    left_running: bool = False
    last_status: str | None = None
    why_unconfirmed: str = ""


class Run:
    """One execution of a plan. Build it with :meth:`dmsnb.Client.run`.

    :meth:`execute` blocks until every instance settled (or the run was
    cancelled); :meth:`start` runs it in a worker thread. :attr:`results`
    is the results frame at any moment, partial while the run goes on.
    """

    def __init__(
        self,
        client: Client,
        plan: Plan,
        *,
        confirm: int | None = None,
        dry_run: bool = False,
        wave_size: int | None = None,
        stop_on_failure: bool = True,
        pause_seconds: float = 0.0,
        track: bool = True,
        tracking: Tracking | None = None,
        audit: AuditTrail | None = None,
        on_progress: Callable[[Run], None] | None = None,
    ) -> None:
        _check_run_settings(plan, confirm, dry_run, wave_size, pause_seconds)
        if plan.executed_at is not None and not dry_run:
            raise PlanError(
                f"this plan was executed already (at {plan.executed_at:%H:%M:%S} "
                "UTC); make a new plan to act again"
            )
        if (plan.endpoint, plan.project_id) != (client.endpoint, client.project_id):
            raise PlanError(
                "this plan was made for another endpoint or project; make a new "
                "plan with this client"
            )
        self.client = client
        self.plan = plan
        self.dry_run = dry_run
        self.wave_size = wave_size
        self.stop_on_failure = stop_on_failure
        self.pause_seconds = pause_seconds
        self.track = track
        self.tracking = tracking or Tracking()
        self.audit = audit
        self.on_progress = on_progress
        self.run_id = new_run_id()
        self.started_at: float | None = None
        self.finished = threading.Event()
        self.error: BaseException | None = None
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._instances = self._initial_rows()

    # -- public face ---------------------------------------------------------

    def __repr__(self) -> str:
        state = "finished" if self.finished.is_set() else "not finished"
        return f"<dmsnb.Run {self.run_id} {state}: {self.summary()}>"

    @property
    def results(self) -> pd.DataFrame:
        """The results frame now: one row per planned instance."""
        with self._lock:
            rows = [dict(item.row) for item in self._instances.values()]
        frame = results_frame(rows)
        frame.attrs["summary"] = self.summary()
        return frame

    def counts(self) -> dict[str, int]:
        """How many instances are pending, and how many have each result."""
        with self._lock:
            values = [item.row["result"] for item in self._instances.values()]
        counts = {"pending": sum(value is None for value in values)}
        for name in ("success", "failed", "skipped", "unknown"):
            counts[name] = values.count(name)
        return counts

    def summary(self) -> str:
        counts = self.counts()
        if self.dry_run:
            # Every row of a dry run is "skipped"; say which ones the real
            # run would act on and which the plan itself skips.
            would = self.plan.count if counts["pending"] == 0 else 0
            counts = {"would be acted on": would, **counts}
            counts["skipped"] -= would
        parts = [f"{counts[k]} {k}" for k in counts if counts[k]]
        mode = " (dry run)" if self.dry_run else ""
        return f"{self.plan.action}{mode}: {len(self._instances)} instance(s), " + (
            ", ".join(parts) or "nothing planned"
        )

    @property
    def elapsed(self) -> float:
        return 0.0 if self.started_at is None else time.monotonic() - self.started_at

    def cancel(self) -> None:
        """Stop before the next call and stop tracking; calls under way finish."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def start(self) -> Run:
        """Run :meth:`execute` in a daemon worker thread."""
        if self._thread is not None:
            raise RuntimeError("this run was started already")
        self._thread = threading.Thread(
            target=self._execute_in_thread, name="dmsnb-run", daemon=True
        )
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> pd.DataFrame:
        """Wait for a started run; its results (partial if it timed out)."""
        self.finished.wait(timeout)
        return self.results

    def execute(self) -> pd.DataFrame:
        """Run the plan to the end and return the results frame.

        On an interrupt (``KeyboardInterrupt``) or any other exception, the
        rows that were not settled are finalised (``unknown`` if their call
        was sent, ``skipped`` if not), the audit trail records it, and the
        exception propagates; :attr:`results` still holds every row.
        """
        if not self.dry_run:
            with _PLAN_USE:
                if self.plan.executed_at is not None:
                    raise PlanError("this plan was executed already; make a new plan")
                self.plan.executed_at = datetime.now(timezone.utc)
        self.started_at = time.monotonic()
        self._audit("run", **self._run_record())
        for item in self._instances.values():
            if item.state == "done":
                self._audit_settled(item)
        try:
            self._execute()
        except BaseException as error:
            self.error = error
            if isinstance(error, PlanError):
                for item in self._pending():
                    self._settle(item, "skipped", f"not sent: {error}")
            else:
                self._finish_all(f"interrupted ({type(error).__name__})")
            self._audit_end(interrupted=True, note=f"{type(error).__name__}: {error}")
            self.finished.set()
            raise
        self._finish_all("cancelled" if self.cancelled else "run ended")
        self._audit_end(interrupted=False)
        self.finished.set()
        self._progress()
        return self.results

    # -- the steps ----------------------------------------------------------

    def _execute(self) -> None:
        if self.dry_run:
            for item in self._pending():
                self._settle(item, "skipped", f"dry run: would {self._verb()}")
            return

        self._check_unchanged()
        waves = self._waves()
        for number, wave in enumerate(waves, start=1):
            if self.cancelled:
                self._skip(wave, f"cancelled before wave {number}")
                continue
            failed = self._first_failure()
            if failed and self.stop_on_failure and number > 1:
                self._skip(wave, f"not started: {failed} failed in an earlier wave")
                continue
            if number > 1 and self.pause_seconds:
                self._cancel.wait(self.pause_seconds)
                if self.cancelled:
                    self._skip(wave, f"cancelled before wave {number}")
                    continue
            self._run_wave(number, wave)

    def _run_wave(self, number: int, wave: list[_Instance]) -> None:
        for item in wave:
            item.row["wave"] = number
        if self.plan.use_all_failure:
            self._send(wave, all_failure=True)
        else:
            for start in range(0, len(wave), _api.BATCH_LIMIT):
                if self.cancelled:
                    self._skip(wave[start:], "cancelled before its call was sent")
                    break
                self._send(wave[start : start + _api.BATCH_LIMIT])

        lost = [item for item in wave if item.state == "unconfirmed"]
        if lost:
            self._reconcile(lost)
        if self.track:
            self._follow([i for i in wave if i.state in ("accepted", "unconfirmed")])
        else:
            for item in wave:
                if item.state == "accepted":
                    self._settle(
                        item, "success", "accepted; not followed (track=False)"
                    )
                elif item.state == "unconfirmed":
                    seen = item.last_status or "unread"
                    self._settle(
                        item,
                        "unknown",
                        f"{item.why_unconfirmed} and status {seen} does not "
                        "show whether it acted; not resent",
                    )

    def _send(self, chunk: list[_Instance], *, all_failure: bool = False) -> None:
        ids = [item.instance_id for item in chunk]
        action = "delete" if self.plan.action == "delete_failed" else self.plan.action
        wave = chunk[0].row["wave"] if chunk else None
        self._audit(
            "intent",
            action=action,
            wave=wave,
            instance_ids=ids,
            all_failure=all_failure,
        )
        requested_at = datetime.now(timezone.utc)
        with self._lock:
            for item in chunk:
                item.state = "sending"
                item.row["requested_at"] = requested_at

        answer = self.client._post_action(action, ids, all_failure=all_failure)

        self._audit(
            "answer",
            action=action,
            wave=wave,
            request_id=answer.request_id,
            http_status=answer.status_code,
            outcomes=answer.outcomes,
            error=None if answer.error is None else str(answer.error),
        )
        now = time.monotonic()
        for item in chunk:
            self._take_answer(item, answer, now)
        self._progress()

    def _take_answer(self, item: _Instance, answer: ActionAnswer, now: float) -> None:
        outcome = answer.outcomes.get(item.instance_id, "lost")
        item.row["request_id"] = answer.request_id
        error_code = getattr(answer.error, "error_code", None)
        if outcome == "accepted":
            item.state = "accepted"
            item.accepted_at = now
        elif outcome == "failed":
            item.row["error_code"] = error_code
            why = (
                f"refused: {answer.error}"
                if answer.error
                else "the service reported failed (it gives no reason)"
            )
            self._settle(item, "failed", why)
        elif outcome == "not_sent":
            self._settle(item, "failed", f"not sent: {answer.error}")
        else:
            item.state = "unconfirmed"
            item.accepted_at = now
            item.why_unconfirmed = _why_unconfirmed(answer.error)
            cause = answer.error.__cause__ if answer.error else None
            if isinstance(cause, APIError):
                item.row["error_code"] = cause.error_code
            item.row["reason"] = f"{item.why_unconfirmed}; reading statuses"

    def _reconcile(self, lost: list[_Instance]) -> None:
        """Decide from the statuses whether a call whose answer was lost acted."""
        statuses = self._read_statuses([item.instance_id for item in lost])
        for item in lost:
            status = statuses.get(item.instance_id)
            if status is None:
                continue
            item.last_status = status
            acted = (
                status != "RUNNING"
                if self.plan.action == "restart"
                else status in (GONE, "DELETING", "RECYCLE")
            )
            if acted:
                item.state = "accepted"
                item.left_running = True
                item.row["reason"] = (
                    f"{item.why_unconfirmed}; status {status} shows it acted"
                )
        self._audit(
            "reconcile",
            action=self.plan.action,
            statuses={item.instance_id: item.last_status for item in lost},
        )

    def _follow(self, items: list[_Instance]) -> None:
        pending = {item.instance_id: item for item in items}
        interval = self.tracking.interval
        first_round = True
        while pending:
            if self.cancelled:
                for item in pending.values():
                    self._settle(
                        item,
                        "unknown",
                        f"tracking cancelled; last seen {item.last_status}",
                    )
                return
            # The first look comes at once, so that a quick transition (the
            # instance leaving RUNNING) is not missed; then rounds back off.
            if not first_round:
                self._cancel.wait(interval)
                interval = min(
                    interval * self.tracking.backoff, self.tracking.max_interval
                )
            first_round = False

            statuses = self._read_statuses(list(pending))
            now = time.monotonic()
            for instance_id in list(pending):
                item = pending[instance_id]
                verdict = self._observe(item, statuses.get(instance_id), now)
                if verdict is not None:
                    self._settle(item, *verdict)
                    del pending[instance_id]
            self._progress()

    def _observe(
        self, item: _Instance, status: str | None, now: float
    ) -> tuple[str, str] | None:
        """The result of ``item`` once ``status`` is seen, or None if pending."""
        waited = now - item.accepted_at
        if status is not None:
            item.last_status = status
            if status != "RUNNING":
                item.left_running = True
        unconfirmed = item.state == "unconfirmed"
        if self.plan.action == "restart":
            if status == "RUNNING" and item.left_running:
                return "success", "RUNNING again after the restart"
            if status == "RUNNING" and waited >= self.tracking.settle_seconds:
                if unconfirmed:
                    return "failed", (
                        f"not restarted: {item.why_unconfirmed} and the instance "
                        f"stayed RUNNING for {waited:.0f} s; not resent, plan "
                        "again to retry"
                    )
                return "success", "RUNNING; the settle time passed after acceptance"
            if status == "ERROR":
                return "failed", "went to ERROR during the restart"
            if status == GONE:
                return "failed", "the instance disappeared during the restart"
        else:
            if status == GONE:
                return "success", "gone (the service answers 404)"
            if status == "RECYCLE":
                return "success", "deleted into the Recycle Bin"
            if (
                unconfirmed
                and status not in (None, "DELETING", "ERROR")
                and (waited >= self.tracking.settle_seconds)
            ):
                return "failed", (
                    f"not deleted: {item.why_unconfirmed} and the instance is "
                    f"still {status} after {waited:.0f} s; not resent, plan "
                    "again to retry"
                )
        if waited >= self.tracking.timeout:
            seen = item.last_status or "unread"
            if unconfirmed:
                return "unknown", (
                    f"{item.why_unconfirmed}; still {seen} after {waited:.0f} s"
                )
            return "failed", f"timed out after {waited:.0f} s; last seen {seen}"
        return None

    def _read_statuses(self, ids: list[str]) -> dict[str, str]:
        """One round of reads: the statuses of ``ids`` (``GONE`` for a 404).

        An id whose status could not be read is left out of the answer.
        """
        wanted = set(ids)
        statuses: dict[str, str] = {}
        pages = max(1, math.ceil(len(self.plan.frame) / _api.PAGE_LIMIT))
        if len(ids) > pages:
            try:
                for record in self.client._sweep_once({"include_failure": True}):
                    instance_id = str(record.get("instance_id"))
                    if instance_id in wanted:
                        statuses[instance_id] = str(record.get("status"))
            except DMSError as error:
                logger.warning("could not read the list this round: %s", error)

        missing = [i for i in ids if i not in statuses]
        if missing:
            workers = min(self.client.max_workers, len(missing))
            with ThreadPoolExecutor(workers, thread_name_prefix="dmsnb-show") as pool:
                for instance_id, status in zip(
                    missing, pool.map(self._show_status, missing), strict=True
                ):
                    if status is not None:
                        statuses[instance_id] = status
        return statuses

    def _show_status(self, instance_id: str, strict: bool = False) -> str | None:
        try:
            return str(self.client.instance(instance_id).get("status"))
        except NotFoundError:
            return GONE
        except DMSError as error:
            if strict:
                raise
            logger.warning("could not read %s this round: %s", instance_id, error)
            return None

    def _check_unchanged(self) -> None:
        """Refuse a plan whose instances changed since it was made.

        Reads the whole list (and asks by id for planned instances missing
        from it). For the all-failure call, which lets the service pick the
        instances, the failed creations must still be exactly the planned
        ones. A read that fails refuses the run too: nothing is sent blind.
        """
        planned = {
            item.instance_id: item.row["status_before"] for item in self._pending()
        }
        if not planned:
            return
        try:
            listed = {
                str(record.get("instance_id")): str(record.get("status"))
                for record in self.client._list_all({"include_failure": True})
            }
            current: dict[str, str | None] = {
                i: listed[i] for i in planned if i in listed
            }
            for instance_id in planned:
                if instance_id not in current:
                    current[instance_id] = self._show_status(instance_id, strict=True)
        except DMSError as error:
            note = f"could not read the statuses before acting: {error}"
            self._audit("refused", note=note)
            raise PlanError(f"{note}. Nothing was sent; {hint_for(error)}") from error

        changed = []
        for instance_id, before in planned.items():
            now = current[instance_id]
            if now != before:
                after = "gone" if now == GONE else now
                changed.append(f"{instance_id} ({before} -> {after})")
        if self.plan.use_all_failure:
            failed_now = {i for i, status in listed.items() if status == "CREATEFAILED"}
            for instance_id in sorted(failed_now - set(planned)):
                changed.append(f"{instance_id} (a new failed creation)")
        if changed:
            note = "changed since the plan: " + ", ".join(changed[:10])
            if len(changed) > 10:
                note += f" and {len(changed) - 10} more"
            self._audit("refused", note=note)
            raise PlanError(f"{note}. Nothing was sent; make a new plan.")

    # -- bookkeeping ---------------------------------------------------------

    def _initial_rows(self) -> dict[str, _Instance]:
        items: dict[str, _Instance] = {}
        action = self.plan.action
        for record in self.plan.frame.to_dict("records"):
            instance_id = str(record["instance_id"])
            status = record.get("status")
            row = {
                "instance_id": instance_id,
                "action": action,
                "result": None,
                "reason": None,
                "status_before": None if pd.isna(status) else status,
                "status_after": None,
                "requested_at": None,
                "settled_at": None,
                "duration_s": None,
                "wave": None,
                "request_id": None,
                "error_code": None,
            }
            item = _Instance(instance_id, row)
            if not record["allowed"]:
                row["result"] = "skipped"
                row["reason"] = record["reason"]
                row["status_after"] = row["status_before"]
                item.state = "done"
            items[instance_id] = item
        return items

    def _pending(self) -> list[_Instance]:
        return [i for i in self._instances.values() if i.state != "done"]

    def _waves(self) -> list[list[_Instance]]:
        pending = self._pending()
        size = self.wave_size or len(pending) or 1
        return [pending[n : n + size] for n in range(0, len(pending), size)]

    def _first_failure(self) -> str | None:
        for item in self._instances.values():
            if item.row["result"] == "failed" and item.row["wave"] is not None:
                return str(item.instance_id)
        return None

    def _skip(self, items: Iterable[_Instance], reason: str) -> None:
        for item in items:
            if item.state in ("planned",):
                self._settle(item, "skipped", reason)

    def _settle(self, item: _Instance, result: str, reason: str) -> None:
        settled_at = datetime.now(timezone.utc)
        with self._lock:
            if item.state == "done":
                return
            item.state = "done"
            item.row["result"] = result
            item.row["reason"] = reason
            after = item.last_status
            item.row["status_after"] = None if after == GONE else after
            if result == "success" and after == GONE:
                item.row["status_after"] = "GONE"
            item.row["settled_at"] = settled_at
            requested = item.row["requested_at"]
            if requested is not None:
                duration = (settled_at - requested).total_seconds()
                item.row["duration_s"] = round(duration, 3)
        self._audit_settled(item)

    def _audit_settled(self, item: _Instance) -> None:
        self._audit(
            "settled",
            action=self.plan.action,
            wave=item.row["wave"],
            instance_id=item.instance_id,
            result=item.row["result"],
            reason=item.row["reason"],
            status_after=item.row["status_after"],
        )

    def _finish_all(self, why: str) -> None:
        for item in list(self._instances.values()):
            if item.state == "planned":
                self._settle(item, "skipped", f"{why} before its call was sent")
            elif item.state == "sending":
                self._settle(item, "unknown", f"{why} while its call was in flight")
            elif item.state in ("accepted", "unconfirmed"):
                seen = item.last_status or "unread"
                self._settle(item, "unknown", f"{why} while tracking; last seen {seen}")

    def _verb(self) -> str:
        return {"delete_failed": "delete"}.get(self.plan.action, self.plan.action)

    def _run_record(self) -> dict[str, Any]:
        client = self.client
        return {
            **who(),
            "endpoint": client.endpoint,
            "project_id": client.project_id,
            "api_version": client.api_version,
            "simulator": client.is_simulator,
            "action": self.plan.action,
            "dry_run": self.dry_run,
            "wave_size": self.wave_size,
            "stop_on_failure": self.stop_on_failure,
            "tracking": vars(self.tracking) if self.track else None,
            "instances": [
                {
                    "instance_id": r["instance_id"],
                    "status": r["status"],
                    "allowed": bool(r["allowed"]),
                    "reason": r["reason"],
                }
                for r in self.plan.frame.to_dict("records")
            ],
        }

    def _audit(self, kind: str, **fields: Any) -> None:
        if self.audit is not None:
            self.audit.write(kind, self.run_id, **fields)

    def _audit_end(self, *, interrupted: bool, note: str | None = None) -> None:
        try:
            self._audit(
                "end",
                action=self.plan.action,
                counts=self.counts(),
                cancelled=self.cancelled,
                interrupted=interrupted,
                note=note,
            )
        except OSError as error:
            logger.error("could not write the end of the audit trail: %s", error)

    def _progress(self) -> None:
        if self.on_progress is not None:
            try:
                self.on_progress(self)
            except Exception:
                logger.exception("the progress callback failed")

    def _execute_in_thread(self) -> None:
        try:
            self.execute()
        except BaseException:
            logger.exception("the run stopped with an error")


def _check_run_settings(
    plan: Plan,
    confirm: int | None,
    dry_run: bool,
    wave_size: int | None,
    pause_seconds: float,
) -> None:
    if wave_size is not None and (
        isinstance(wave_size, bool) or not isinstance(wave_size, int) or wave_size < 1
    ):
        raise PlanError(
            f"wave_size must be a whole number of at least 1, not {wave_size!r}"
        )
    if pause_seconds < 0:
        raise PlanError("pause_seconds must not be negative")
    if dry_run:
        return
    if plan.count == 0:
        reasons = plan.frame["reason"].dropna().value_counts()
        why = "; ".join(f"{n} x {reason}" for reason, n in reasons.items())
        raise PlanError(f"the plan has nothing to do ({why or 'no instances'})")
    if plan.action in ("delete", "delete_failed"):
        if confirm is None:
            raise PlanError(
                f"deleting destroys data with no backup; pass confirm={plan.count} "
                f"to confirm that {plan.count} instance(s) go"
            )
        if (
            isinstance(confirm, bool)
            or not isinstance(confirm, int)
            or (confirm != plan.count)
        ):
            raise PlanError(
                f"confirm={confirm!r} does not match the plan, which deletes "
                f"{plan.count} instance(s); nothing was sent (if that is right, "
                f"pass confirm={plan.count})"
            )


def hint_for(error: DMSError) -> str:
    """What the user can do about an error that stopped a run."""
    if isinstance(error, AuthError):
        return "check the credentials (the AK/SK pair or the token) and the project id"
    if isinstance(error, TransportError):
        return "check the endpoint and the network, then make a new plan"
    return "make a new plan and try again"


def _why_unconfirmed(error: DMSError | None) -> str:
    """Why a sent call's outcome is not known, in a few words."""
    cause = error.__cause__ if error is not None else None
    if isinstance(cause, APIError):
        code = f" {cause.error_code}" if cause.error_code else ""
        return f"the service answered HTTP {cause.status_code}{code}"
    if isinstance(cause, ValueError):
        return "its answer could not be read"
    if cause is not None:
        return f"its answer was lost ({type(cause).__name__})"
    return "its answer was lost"
