"""Several projects and regions as one fleet: :class:`MultiClient`.

Listing asks every project at the same time (one thread per project) and
stacks the answers into one frame with ``region`` and ``project_id`` in
front. A project that cannot be listed is reported (a WARNING log line, and
``frame.attrs["failed_regions"]``) and the others are still shown.

A batch action on a mixed selection is routed row by row to the project the
row names (``project_id``; else the one project whose fleet holds the id),
planned per project, and run **one project after another**, in the order of
the clients. Running projects in turn keeps the blast radius of a mistake
to one project at a time, keeps a rolling restart rolling (two regions that
back each other up are never down together), and lets ``stop_on_failure``
stop the action before it spreads to the next project. Before the first
write, every project's planned statuses are read again, so a stale plan
sends nothing anywhere. The results come back as one frame keyed by
``instance_id`` with ``region`` and ``project_id``.
"""

from __future__ import annotations

import dataclasses
import html
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
else:
    from ._lazy import pd

from ._client import Client
from ._credentials import resolve_credentials
from ._errors import ConfigError, DMSError
from ._frames import RESULT_COLUMNS, results_frame
from ._ids import checked_instance_ids
from ._plan import PLAN_ACTIONS, Plan, Protection
from ._run import PlanError

logger = logging.getLogger(__name__)

PLACE_COLUMNS = ("region", "project_id")
"""The columns that say where an instance lives; first in every frame."""

_DELETES = ("delete", "delete_failed")
_UNSETTLED = ("failed", "unknown")


class MultiClient:
    """The Kafka instances of several projects (and regions) as one fleet.

    Build it from :class:`dmsnb.Client` objects (each project once), or with
    :meth:`from_profiles` / :meth:`from_regions`. ``region`` in the frames
    is the client's region, or its endpoint when it was built with one.
    ``max_workers`` bounds how many projects are listed at once.
    """

    def __init__(self, clients: Iterable[Client], *, max_workers: int = 8) -> None:
        clients = list(clients)
        if not clients:
            raise ConfigError("a MultiClient needs at least one Client")
        for client in clients:
            if not isinstance(client, Client):
                raise TypeError(
                    f"MultiClient takes dmsnb.Client objects, not {client!r}"
                )
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, not {max_workers}")
        by_project: dict[str, Client] = {}
        for client in clients:
            if client.project_id in by_project:
                raise ConfigError(
                    f"project {client.project_id} is given twice; give each "
                    "project once"
                )
            by_project[client.project_id] = client

        self.clients = clients
        self.max_workers = max_workers
        self.last_results: pd.DataFrame | None = None
        """The results of the last :meth:`execute`, also after an interrupt."""
        self._by_project = by_project

    @classmethod
    def from_profiles(cls, profiles: Iterable[str], **options: Any) -> MultiClient:
        """One client per profile (credentials-file section or ``clouds.yaml``
        cloud); each profile names its region. ``options`` go to every
        :class:`dmsnb.Client`."""
        clients: list[Client] = []
        try:
            for profile in profiles:
                clients.append(Client.from_profile(profile, **options))
            return cls(clients)
        except BaseException:
            for client in clients:
                client.close()
            raise

    @classmethod
    def from_regions(
        cls,
        projects: Mapping[str, str],
        *,
        profile: str | None = None,
        **options: Any,
    ) -> MultiClient:
        """One AK/SK for several regions: ``{"eu-de": project_id, ...}``.

        The keys are found as :func:`dmsnb.resolve_credentials` finds them
        (``profile`` names one); each region gets its own project id. An IAM
        token is scoped to one project, so token credentials are refused:
        use :meth:`from_profiles` with one ``clouds.yaml`` cloud per region.
        """
        if not projects:
            raise ConfigError("give at least one region and its project id")
        # Each region gets its own project; the first one stands in until then.
        credentials = resolve_credentials(
            profile, project_id=next(iter(projects.values()))
        )
        if credentials.token or credentials.token_provider is not None:
            raise ConfigError(
                f"the credentials from {credentials.source} are an IAM token, which "
                "is scoped to one project; use MultiClient.from_profiles with one "
                "clouds.yaml cloud per region"
            )
        clients = [
            Client(
                region=region,
                credentials=dataclasses.replace(
                    credentials, project_id=project_id, region=region
                ),
                **options,
            )
            for region, project_id in projects.items()
        ]
        return cls(clients)

    def __repr__(self) -> str:
        places = ", ".join(
            f"{_place(client)}/{client.project_id[:8]}" for client in self.clients
        )
        return f"<dmsnb.MultiClient {len(self.clients)} project(s): {places}>"

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def __enter__(self) -> MultiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def client_for(self, project_id: str) -> Client:
        """The client of ``project_id``; ``KeyError`` when there is none."""
        return self._by_project[project_id]

    # -- reads ---------------------------------------------------------------

    def instances(self, **filters: Any) -> pd.DataFrame:
        """Every project's instances in one frame, listed concurrently.

        Takes the filters of :meth:`dmsnb.Client.instances`. ``region`` and
        ``project_id`` come first. A project that could not be listed is
        missing from the frame and named in ``attrs["failed_regions"]`` (a
        list of ``{"region", "project_id", "error"}``) and in
        ``attrs["summary"]``.
        """
        fleets, failures = self._list(filters)
        frame = _stacked(list(fleets.values()))
        frame.attrs["failed_regions"] = self._failure_records(failures)
        frame.attrs["summary"] = self._listing_summary(fleets, failures)
        return frame

    def _list(
        self, filters: Mapping[str, Any]
    ) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
        """Each project's instances frame (with the place columns), and the
        error of each project that could not be listed."""
        workers = min(self.max_workers, len(self.clients))
        with ThreadPoolExecutor(workers, thread_name_prefix="dmsnb-project") as pool:
            futures = {
                client.project_id: pool.submit(client.instances, **filters)
                for client in self.clients
            }
        fleets: dict[str, pd.DataFrame] = {}
        failures: dict[str, str] = {}
        for project_id, future in futures.items():
            client = self._by_project[project_id]
            try:
                fleets[project_id] = _placed(future.result(), client)
            except DMSError as error:
                failures[project_id] = str(error)
                logger.warning(
                    "could not list %s (project %s): %s",
                    _place(client),
                    project_id,
                    error,
                )
        return fleets, failures

    def _failure_records(self, failures: Mapping[str, str]) -> list[dict[str, str]]:
        return [
            {
                "region": _place(self._by_project[pid]),
                "project_id": pid,
                "error": error,
            }
            for pid, error in failures.items()
        ]

    def _listing_summary(
        self, fleets: Mapping[str, pd.DataFrame], failures: Mapping[str, str]
    ) -> str:
        count = sum(len(frame) for frame in fleets.values())
        text = f"{count} instance(s) in {len(fleets)} of {len(self.clients)} project(s)"
        if failures:
            text += "; could not list " + "; ".join(
                f"{_place(self._by_project[pid])} ({pid}): {error}"
                for pid, error in failures.items()
            )
        return text

    # -- plans ---------------------------------------------------------------

    def plan(
        self,
        action: str,
        selection: Iterable[str] | pd.DataFrame | None = None,
        *,
        protect: Protection | Sequence[Protection] = (),
        fleet: pd.DataFrame | None = None,
    ) -> MultiPlan:
        """What ``action`` would do to a mixed selection now; nothing is sent.

        The selection is a frame with ``instance_id`` (and ``project_id``, as
        :meth:`instances` gives it), or a list of ids, each then looked up
        in the fleets. A row is skipped with the reason when its project is
        not one of the clients, could not be listed, or when a bare id is in
        no project or in several. ``fleet`` is a frame from
        :meth:`instances` with ``include_failed=True``; without it every
        project is listed now.
        """
        if action not in PLAN_ACTIONS:
            raise ValueError(
                f"unknown action {action!r}; use one of {', '.join(PLAN_ACTIONS)}"
            )
        wanted: list[tuple[str, str | None]] = []
        if action == "delete_failed":
            if selection is not None:
                raise ValueError(
                    "delete_failed acts on every failed creation; select nothing, "
                    "or use 'delete' with the ids"
                )
        else:
            if selection is None:
                raise ValueError(f"select the instances to {action}")
            wanted = self._wanted(selection)

        fleets, failures = self._fleets(fleet)
        routes, unrouted = self._route(wanted, fleets, failures)
        if action == "delete_failed":
            routes = {pid: [] for pid in fleets}

        plans: dict[str, Plan] = {}
        for client in self.clients:
            pid = client.project_id
            if pid not in routes:
                continue
            ids = routes[pid] or None
            plan = client.plan(action, ids, protect=protect, fleet=fleets[pid])
            if len(plan.frame):
                plans[pid] = plan
        return MultiPlan(
            action=action,
            plans=plans,
            regions={client.project_id: _place(client) for client in self.clients},
            unrouted=_unrouted_frame(unrouted),
            failures=failures,
        )

    def _wanted(
        self, selection: Iterable[str] | pd.DataFrame
    ) -> list[tuple[str, str | None]]:
        """``(instance_id, project_id or None)`` per selected row, checked."""
        if not isinstance(selection, pd.DataFrame):
            return [(iid, None) for iid in checked_instance_ids(selection)]
        if "instance_id" not in selection.columns:
            raise ValueError("the frame has no 'instance_id' column to act on")
        ids = [str(value) for value in selection["instance_id"]]
        checked_instance_ids(list(dict.fromkeys(ids)))  # empty, not UUIDs
        projects = self._row_projects(selection)

        pairs = list(zip(ids, projects, strict=True))
        twice = sorted({iid for (iid, _), n in Counter(pairs).items() if n > 1})
        if twice:
            raise ValueError(f"instances selected more than once: {', '.join(twice)}")
        return pairs

    def _row_projects(self, selection: pd.DataFrame) -> list[str | None]:
        """Each row's project: its ``project_id``, or the one client of its region."""
        if "project_id" in selection.columns:
            return [
                None if pd.isna(value) else str(value)
                for value in selection["project_id"]
            ]
        if "region" not in selection.columns:
            return [None] * len(selection)
        by_region: dict[str, list[str]] = {}
        for client in self.clients:
            by_region.setdefault(_place(client), []).append(client.project_id)
        projects: list[str | None] = []
        for value in selection["region"]:
            owners = [] if pd.isna(value) else by_region.get(str(value), [])
            projects.append(owners[0] if len(owners) == 1 else None)
        return projects

    def _fleets(
        self, fleet: pd.DataFrame | None
    ) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
        if fleet is None:
            return self._list({"include_failed": True})
        if "project_id" not in fleet.columns:
            raise ValueError(
                "fleet has no 'project_id' column; give a frame from "
                "MultiClient.instances(include_failed=True)"
            )
        failures = {
            str(record["project_id"]): str(record["error"])
            for record in fleet.attrs.get("failed_regions", [])
            if record.get("project_id") in self._by_project
        }
        fleets = {
            pid: fleet[fleet["project_id"] == pid].reset_index(drop=True)
            for pid in self._by_project
            if pid not in failures
        }
        return fleets, failures

    def _route(
        self,
        wanted: list[tuple[str, str | None]],
        fleets: Mapping[str, pd.DataFrame],
        failures: Mapping[str, str],
    ) -> tuple[dict[str, list[str]], list[dict[str, Any]]]:
        """The ids per project, and a row with the reason for each unrouted one."""
        owners: dict[str, list[str]] = {}
        for owner, frame in fleets.items():
            for listed in frame["instance_id"].dropna():
                owners.setdefault(str(listed), []).append(owner)

        routes: dict[str, list[str]] = {}
        unrouted: list[dict[str, Any]] = []
        for iid, pid in wanted:
            target, reason = self._target(iid, pid, owners, failures)
            if target is not None:
                routes.setdefault(target, []).append(iid)
                continue
            place = _place(self._by_project[pid]) if pid in self._by_project else None
            unrouted.append(
                {
                    "instance_id": iid,
                    "region": place,
                    "project_id": pid,
                    "reason": reason,
                }
            )
        return routes, unrouted

    def _target(
        self,
        iid: str,
        pid: str | None,
        owners: Mapping[str, list[str]],
        failures: Mapping[str, str],
    ) -> tuple[str | None, str]:
        """The project to send ``iid`` to, or None and why not."""
        if pid is not None:
            if pid not in self._by_project:
                return None, f"project {pid} is not one of this MultiClient's projects"
            if pid in failures:
                return None, (
                    f"{_place(self._by_project[pid])} could not be listed: "
                    f"{failures[pid]}; nothing is sent there"
                )
            return pid, ""

        found = owners.get(iid, [])
        if len(found) == 1:
            return found[0], ""
        if len(found) > 1:
            return None, (
                f"the id is in {len(found)} projects ({', '.join(found)}); select "
                "it with its project_id (a row of MultiClient.instances())"
            )
        reason = "not in the fleet: no such instance in any project"
        if failures:
            unread = ", ".join(_place(self._by_project[p]) for p in failures)
            reason += f" that could be listed ({unread} could not: it may be there)"
        return None, reason

    # -- actions -------------------------------------------------------------

    def execute(
        self,
        plan: MultiPlan,
        *,
        confirm: int | None = None,
        dry_run: bool = False,
        stop_on_failure: bool = True,
        **options: Any,
    ) -> pd.DataFrame:
        """Execute ``plan`` one project after another; one result row per row.

        A delete needs ``confirm`` equal to the plan's total count across
        projects. ``stop_on_failure`` (default True) also stops at project
        boundaries: once a project ends with a ``failed`` or ``unknown``
        instance, the next projects are not started (their rows are
        ``skipped`` with the reason). The other options (``wave_size``,
        ``tracking`` ...) go to each project's :meth:`dmsnb.Client.execute`;
        waves are counted per project. The results, also partial after an
        interrupt, stay in :attr:`last_results`.
        """
        if not isinstance(plan, MultiPlan):
            raise PlanError("execute takes a plan from MultiClient.plan")
        strangers = set(plan.plans) - set(self._by_project)
        if strangers:
            raise PlanError("this plan was made for other projects; make a new plan")
        _check_confirmation(plan, confirm, dry_run)
        if not dry_run:
            if plan.executed_at is not None:
                raise PlanError("this plan was executed already; make a new plan")
            self._check_unchanged(plan)
            plan.executed_at = datetime.now(timezone.utc)

        done: list[pd.DataFrame] = []
        failures: dict[str, str] = {}
        stopped_by: str | None = None
        pending = list(plan.plans.items())
        try:
            while pending:
                pid, project_plan = pending[0]
                client = self._by_project[pid]
                if project_plan.count == 0:
                    frame = _skipped(project_plan, "")
                elif stopped_by is not None:
                    frame = _skipped(project_plan, f"not started: {stopped_by}")
                else:
                    frame = self._run_project(
                        client,
                        project_plan,
                        dry_run,
                        stop_on_failure,
                        options,
                        failures,
                    )
                    if stop_on_failure and not dry_run:
                        stopped_by = _stop_reason(client, frame, failures)
                done.append(_placed(frame, client))
                pending.pop(0)
        except BaseException as error:
            done += self._interrupted(pending, error)
            self.last_results = self._merged(plan, done, failures, dry_run)
            raise

        results = self._merged(plan, done, failures, dry_run)
        self.last_results = results
        return results

    def _run_project(
        self,
        client: Client,
        plan: Plan,
        dry_run: bool,
        stop_on_failure: bool,
        options: Mapping[str, Any],
        failures: dict[str, str],
    ) -> pd.DataFrame:
        confirm = plan.count if plan.action in _DELETES else None
        try:
            return client.execute(
                plan,
                confirm=confirm,
                dry_run=dry_run,
                stop_on_failure=stop_on_failure,
                **options,
            )
        except PlanError as error:
            failures[client.project_id] = str(error)
            return _skipped(plan, f"not started: {error}")

    def _interrupted(
        self, pending: list[tuple[str, Plan]], error: BaseException
    ) -> list[pd.DataFrame]:
        """The rows of the project under way and of those not started."""
        frames = []
        why = f"interrupted ({type(error).__name__})"
        for number, (pid, project_plan) in enumerate(pending):
            client = self._by_project[pid]
            run = client.last_run
            if number == 0 and run is not None and run.plan is project_plan:
                frame = run.results
            else:
                frame = _skipped(project_plan, f"{why} before its project started")
            frames.append(_placed(frame, client))
        return frames

    def _check_unchanged(self, plan: MultiPlan) -> None:
        """Refuse, before any write, a plan whose instances changed anywhere."""
        planned = {pid: p for pid, p in plan.plans.items() if p.count}
        if not planned:
            return
        clients = [self._by_project[pid] for pid in planned]
        workers = min(self.max_workers, len(clients))
        with ThreadPoolExecutor(workers, thread_name_prefix="dmsnb-project") as pool:
            futures = {
                c.project_id: pool.submit(c.instances, include_failed=True)
                for c in clients
            }

        problems = []
        for pid, future in futures.items():
            place = _place(self._by_project[pid])
            try:
                fleet = future.result()
            except DMSError as error:
                problems.append(f"{place} could not be read again: {error}")
                continue
            now = dict(zip(fleet["instance_id"], fleet["status"], strict=True))
            frame = planned[pid].frame
            for row in frame[frame["allowed"]].to_dict("records"):
                current = now.get(row["instance_id"])
                if current != row["status"]:
                    seen = "not listed" if current is None else current
                    problems.append(
                        f"{row['instance_id']} in {place} ({row['status']} -> {seen})"
                    )
        if problems:
            shown = "; ".join(problems[:10])
            more = f" and {len(problems) - 10} more" if len(problems) > 10 else ""
            raise PlanError(
                f"changed since the plan: {shown}{more}. Nothing was sent to any "
                "project; make a new plan."
            )

    def _merged(
        self,
        plan: MultiPlan,
        done: list[pd.DataFrame],
        failures: Mapping[str, str],
        dry_run: bool,
    ) -> pd.DataFrame:
        unrouted = _skipped_unrouted(plan)
        results = _stacked([*done, unrouted], RESULT_COLUMNS)
        every_failure = {**plan.failures, **failures}
        results.attrs["failed_regions"] = self._failure_records(every_failure)
        results.attrs["projects"] = [
            str(frame.attrs.get("summary", "")) for frame in done if len(frame)
        ]
        results.attrs["summary"] = _results_summary(plan, results, failures, dry_run)
        return results

    def restart(
        self, selection: Iterable[str] | pd.DataFrame, **options: Any
    ) -> pd.DataFrame:
        """Plan and restart a mixed selection; see :meth:`execute`."""
        protect = options.pop("protect", ())
        return self.execute(self.plan("restart", selection, protect=protect), **options)

    def delete(
        self,
        selection: Iterable[str] | pd.DataFrame,
        *,
        confirm: int,
        **options: Any,
    ) -> pd.DataFrame:
        """Plan and delete a mixed selection; ``confirm`` is the total count."""
        protect = options.pop("protect", ())
        plan = self.plan("delete", selection, protect=protect)
        return self.execute(plan, confirm=confirm, **options)

    def delete_failed(
        self, *, confirm: int | None = None, **options: Any
    ) -> pd.DataFrame:
        """Delete the failed creations of every project, one project at a time.

        ``confirm`` must be the planned total across projects (see it with
        ``multi.plan("delete_failed")``). When there is none, nothing is
        sent and no confirmation is needed.
        """
        protect = options.pop("protect", ())
        plan = self.plan("delete_failed", protect=protect)
        if plan.count == 0 and not options.get("dry_run"):
            options["dry_run"] = True
            results = self.execute(plan, **options)
            results.attrs["summary"] = (
                "delete_failed: no instance whose creation failed in the "
                f"projects listed; nothing was sent. {results.attrs['summary']}"
            )
            return results
        return self.execute(plan, confirm=confirm, **options)

    @staticmethod
    def merge_results(fleet: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
        """Add the result columns to a fleet frame, on project and instance id.

        Like :func:`dmsnb.merge_results`, for frames from :meth:`instances`
        and :meth:`execute`: every fleet row in its order, then the result
        columns; a result whose instance is no longer in the fleet is kept
        as an extra row. Neither argument is changed.
        """
        keys = ["project_id", "instance_id"]
        for name, frame in (("fleet", fleet), ("results", results)):
            missing = [key for key in keys if key not in frame.columns]
            if missing:
                raise ValueError(
                    f"{name} has no {', '.join(missing)} column to merge on"
                )
        if results.duplicated(keys).any():
            raise ValueError("results has more than one row for an instance")

        added = [c for c in results.columns if c not in (*keys, "region")]
        base = fleet.drop(columns=[c for c in added if c in fleet.columns])
        merged = base.reset_index(drop=True).merge(
            results.drop(columns=["region"], errors="ignore"),
            on=keys,
            how="left",
            validate="many_to_one",
        )
        seen = pd.MultiIndex.from_frame(base[keys].astype(object))
        extra = results[
            ~pd.MultiIndex.from_frame(results[keys].astype(object)).isin(seen)
        ]
        combined: pd.DataFrame = pd.concat([merged, extra], ignore_index=True)
        return combined


@dataclass
class MultiPlan:
    """What a batch action will do across projects; from :meth:`MultiClient.plan`.

    ``plans`` holds one :class:`dmsnb.Plan` per project (by project id);
    ``unrouted`` the selected rows that go to no project, with the reason;
    ``failures`` the error of each project that could not be listed.
    """

    action: str
    plans: dict[str, Plan]
    regions: dict[str, str]
    unrouted: pd.DataFrame
    failures: dict[str, str] = field(default_factory=dict)
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    executed_at: datetime | None = None

    @property
    def frame(self) -> pd.DataFrame:
        """One row per selected instance: where, what, allowed and why not."""
        frames = []
        for pid, plan in self.plans.items():
            frame = plan.frame.copy()
            frame.insert(0, "project_id", pid)
            frame.insert(0, "region", self.regions.get(pid, ""))
            frames.append(frame)
        frames.append(self.unrouted)
        columns = ("instance_id", "name", "status", "allowed", "reason")
        stacked = _stacked(frames, columns)
        stacked["allowed"] = stacked["allowed"].astype(bool)
        return stacked

    @property
    def count(self) -> int:
        """How many instances the action will be sent for, in all projects."""
        return sum(plan.count for plan in self.plans.values())

    @property
    def instance_ids(self) -> list[str]:
        return [iid for plan in self.plans.values() for iid in plan.instance_ids]

    @property
    def skipped(self) -> pd.DataFrame:
        frame = self.frame
        skipped: pd.DataFrame = frame[~frame["allowed"]]
        return skipped

    @property
    def failed_regions(self) -> list[dict[str, str]]:
        return [
            {"region": self.regions.get(pid, ""), "project_id": pid, "error": error}
            for pid, error in self.failures.items()
        ]

    def summary(self) -> str:
        verb = (
            "delete failed creations" if self.action == "delete_failed" else self.action
        )
        frame = self.frame
        text = (
            f"{verb}: {self.count} instance(s) to act on in "
            f"{sum(1 for p in self.plans.values() if p.count)} project(s), "
            f"{len(frame) - self.count} skipped"
        )
        if self.failures:
            text += "; could not list " + ", ".join(
                self.regions.get(pid, pid) for pid in self.failures
            )
        return text

    def __repr__(self) -> str:
        return f"<dmsnb.MultiPlan {self.summary()}>"

    def _repr_html_(self) -> str:
        table = self.frame.to_html(index=False, na_rep="", escape=True)
        return f"<p><b>{html.escape(self.summary())}</b></p>{table}"


# -- frames -----------------------------------------------------------------------


def _place(client: Client) -> str:
    return client.region or client.endpoint


def _placed(frame: pd.DataFrame, client: Client) -> pd.DataFrame:
    """A copy of ``frame`` with ``region`` and ``project_id`` in front."""
    placed: pd.DataFrame = frame.drop(
        columns=[c for c in PLACE_COLUMNS if c in frame.columns]
    )
    placed.insert(0, "project_id", client.project_id)
    placed.insert(0, "region", _place(client))
    placed.attrs = dict(frame.attrs)
    return placed


def _stacked(frames: list[pd.DataFrame], leading: Sequence[str] = ()) -> pd.DataFrame:
    """Frames one under the other; the place columns and ``leading`` first."""
    order = [*PLACE_COLUMNS, *leading]
    usable = [frame for frame in frames if len(frame.columns)]
    if not usable or all(frame.empty for frame in usable):
        columns = list(dict.fromkeys([*order, *(c for f in usable for c in f.columns)]))
        empty: pd.DataFrame = pd.DataFrame(
            {column: pd.Series(dtype="object") for column in columns}
        )
        return empty
    stacked = pd.concat([f for f in usable if not f.empty], ignore_index=True)
    rest = [column for column in stacked.columns if column not in order]
    present = [column for column in order if column in stacked.columns]
    tidy: pd.DataFrame = stacked[[*present, *rest]].copy()
    for column in PLACE_COLUMNS:
        tidy[column] = tidy[column].astype("string")
    tidy.attrs = {}
    return tidy


def _unrouted_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame: pd.DataFrame = pd.DataFrame.from_records(
        [{**row, "name": None, "status": None, "allowed": False} for row in rows],
        columns=[*PLACE_COLUMNS, "instance_id", "name", "status", "allowed", "reason"],
    )
    frame["allowed"] = frame["allowed"].astype(bool)
    return frame


def _skipped(plan: Plan, reason: str) -> pd.DataFrame:
    """Result rows for a plan that is not run: ``reason`` for its allowed rows,
    the plan's own reason for the others."""
    rows = []
    for record in plan.frame.to_dict("records"):
        status = None if pd.isna(record["status"]) else record["status"]
        rows.append(
            {
                "instance_id": record["instance_id"],
                "action": plan.action,
                "result": "skipped",
                "reason": reason if record["allowed"] else record["reason"],
                "status_before": status,
                "status_after": status,
            }
        )
    return results_frame(rows)


def _skipped_unrouted(plan: MultiPlan) -> pd.DataFrame:
    rows = [
        {
            "region": record["region"],
            "project_id": record["project_id"],
            "instance_id": record["instance_id"],
            "action": plan.action,
            "result": "skipped",
            "reason": record["reason"],
        }
        for record in plan.unrouted.to_dict("records")
    ]
    return results_frame(rows) if rows else pd.DataFrame()


def _stop_reason(
    client: Client, results: pd.DataFrame, failures: Mapping[str, str]
) -> str | None:
    """Why the next projects must not start after this one, or None."""
    where = f"{_place(client)} ({client.project_id})"
    if client.project_id in failures:
        return f"{where} refused the plan (stop_on_failure)"
    if results["result"].isin(_UNSETTLED).any():
        return f"{where} had failed or unknown instances (stop_on_failure)"
    return None


def _check_confirmation(plan: MultiPlan, confirm: int | None, dry_run: bool) -> None:
    if not dry_run and plan.count == 0:
        reasons = plan.frame["reason"].dropna().value_counts()
        why = "; ".join(f"{n} x {reason}" for reason, n in reasons.items())
        raise PlanError(f"the plan has nothing to do ({why or 'no instances'})")
    if plan.action not in _DELETES:
        return
    if confirm is None and dry_run:
        return
    if confirm is None:
        raise PlanError(
            f"deleting destroys data with no backup; pass confirm={plan.count} to "
            f"confirm that {plan.count} instance(s) go, in all projects together"
        )
    if (
        isinstance(confirm, bool)
        or not isinstance(confirm, int)
        or confirm != plan.count
    ):
        per_project = ", ".join(
            f"{plan.regions.get(pid, pid)}: {p.count}"
            for pid, p in plan.plans.items()
            if p.count
        )
        raise PlanError(
            f"confirm={confirm!r} does not match the plan, which deletes "
            f"{plan.count} instance(s) in all ({per_project or 'none'}); nothing "
            "was sent"
        )


def _results_summary(
    plan: MultiPlan,
    results: pd.DataFrame,
    failures: Mapping[str, str],
    dry_run: bool,
) -> str:
    counts = results["result"].value_counts() if len(results) else pd.Series()
    parts = [
        f"{counts[name]} {name}"
        for name in ("success", "failed", "skipped", "unknown")
        if name in counts
    ]
    mode = " (dry run)" if dry_run else ""
    projects = results["project_id"].dropna().nunique() if len(results) else 0
    text = (
        f"{plan.action}{mode}: {len(results)} instance(s) in {projects} project(s), "
        + (", ".join(parts) or "no results")
    )
    if plan.failures:
        text += "; could not list " + "; ".join(
            f"{plan.regions.get(pid, pid)} ({pid}): {error}"
            for pid, error in plan.failures.items()
        )
    if failures:
        text += "; not run in " + "; ".join(
            f"{plan.regions.get(pid, pid)} ({pid}): {error}"
            for pid, error in failures.items()
        )
    return text
