"""The ``dmsnb`` command, and the checks the runbooks share with it.

Commands: ``instances`` (list, filter, print as a table, CSV, JSON or ids),
``restart``, ``delete``, ``delete-failed`` (plan, act, follow every instance
until it settles), ``run`` (execute a runbook notebook with papermill),
``simulator`` (serve one), ``lab`` (open the quickstart in JupyterLab) and
``demo`` (the main job on a fresh simulator).

Every command that talks to the service takes ``--simulator`` for a fresh
embedded simulator; otherwise the credentials come from a profile or the
official SDK's environment variables, never from an argument. The exit
status is 0 when every instance succeeded or was skipped, 1 when any failed
or stayed unknown (the output says which), and 2 when an argument is wrong;
arguments are checked before anything is sent.

The runbooks in ``notebooks/`` use the same checks (:class:`Selection`,
:func:`read_ids`, :func:`checked_wave_size` ...), the same :func:`connect`
and end with an :class:`Outcome`.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import os
import shlex
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

import pandas as pd

from . import _api
from ._audit import DEFAULT_AUDIT_PATH
from ._client import Client, all_failure_note
from ._errors import ConfigError, DMSError
from ._frames import merge_results
from ._ids import checked_instance_ids
from ._plan import Plan, Protection
from ._run import PlanError, Run, Tracking

if TYPE_CHECKING:
    from .simulator import Simulator

SHOWN_COLUMNS = [
    "instance_id",
    "name",
    "status_before",
    "action",
    "result",
    "status_after",
    "duration_s",
]
"""The columns of the demo's merged table."""

LISTED_COLUMNS = [
    "instance_id",
    "name",
    "status",
    "engine_version",
    "specification",
    "created_at",
]
"""The columns ``dmsnb instances`` prints unless told otherwise."""

RESULT_COLUMNS = [
    "instance_id",
    "name",
    "result",
    "status_before",
    "status_after",
    "wave",
    "duration_s",
    "reason",
]
"""The columns of the results an action command prints."""

RUNBOOKS = ("rolling-restart", "cleanup-failed", "delete", "fleet-report")
"""The runbooks in ``notebooks/``, by the short name ``dmsnb run`` takes."""

SECRET_WORDS = ("secret", "password", "token", "passwd")
SECRET_NAMES = frozenset({"sk", "ak", "access_key", "secret_key", "credentials"})

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class ParameterError(ConfigError, ValueError):
    """An argument or runbook parameter is wrong; nothing was sent.

    The message says what is wrong and what to give instead.
    """


class InstancesFailed(DMSError):
    """Some instances failed or their outcome stayed unknown.

    Raised by a runbook's last cell (so that a headless run exits non-zero)
    after the results and the audit trail were written.
    """


# -- parameter checks --------------------------------------------------------


def checked_status(status: object) -> str | None:
    """``status`` as one of the service's statuses, or None for any."""
    if status is None or status == "":
        return None
    if not isinstance(status, str) or status.upper() not in _api.STATUSES:
        raise ParameterError(
            f"unknown status {status!r}; use one of {', '.join(_api.STATUSES)}"
        )
    return status.upper()


def checked_wave_size(wave_size: object) -> int | None:
    """The instances per wave (None: all in one wave); at least 1."""
    if wave_size is None:
        return None
    if isinstance(wave_size, bool) or not isinstance(wave_size, int) or wave_size < 1:
        raise ParameterError(
            f"the wave size must be a whole number of at least 1, not {wave_size!r} "
            "(use 1 for one instance at a time, or leave it out for one wave)"
        )
    return wave_size


def checked_seconds(name: str, seconds: object, *, zero: bool = False) -> float:
    """A number of seconds: positive, or also 0 when ``zero``."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise ParameterError(f"{name} must be a number of seconds, not {seconds!r}")
    value = float(seconds)
    if math.isnan(value) or value < 0 or (value == 0 and not zero):
        least = "0 or more" if zero else "more than 0"
        raise ParameterError(f"{name} must be {least} seconds, not {seconds!r}")
    return value


def checked_count(name: str, count: object) -> int | None:
    """A count of instances (0 or more), or None when not given."""
    if count is None:
        return None
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ParameterError(
            f"{name} must be a whole number of instances (0 or more), not {count!r}"
        )
    return count


def parse_tags(tags: object, *, what: str = "tag") -> dict[str, str]:
    """Tags as ``{key: value}`` from ``"env=stg,team=pay"``, a list of
    ``"key=value"`` or a mapping. The value ``*`` matches any value."""
    if tags is None or tags == "":
        return {}
    if isinstance(tags, Mapping):
        return {str(key): str(value) for key, value in tags.items()}
    if isinstance(tags, str):
        items: list[object] = [part for part in tags.split(",") if part.strip()]
    elif isinstance(tags, (list, tuple)):
        items = list(tags)
    else:
        raise ParameterError(f"{what}s must be 'KEY=VALUE,...', not {tags!r}")
    pairs: dict[str, str] = {}
    for item in items:
        key, equals, value = str(item).partition("=")
        if not equals or not key.strip() or not value.strip():
            raise ParameterError(
                f"{what} {item!r} must be KEY=VALUE (e.g. env=stg; '*' matches "
                "any value)"
            )
        pairs[key.strip()] = value.strip()
    return pairs


def parse_names(names: object, *, what: str = "name pattern") -> list[str]:
    """Shell-style name patterns from ``"a*,b*"`` or a list."""
    if names is None or names == "":
        return []
    if isinstance(names, str):
        return [part.strip() for part in names.split(",") if part.strip()]
    if isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names):
        return [str(n) for n in names if n]
    raise ParameterError(f"{what}s must be a list of patterns, not {names!r}")


def read_ids(source: str | os.PathLike[str] | IO[str]) -> list[str]:
    """Instance ids from a file (or a text stream such as standard input).

    Ids are separated by whitespace, commas or new lines; ``#`` starts a
    comment. Raises :class:`ParameterError` naming the file and the line
    when it cannot be read, holds no id, holds something that is not an
    instance id, or holds an id twice.
    """
    if isinstance(source, (str, os.PathLike)):
        label = os.fspath(source)
        try:
            text = Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            why = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise ParameterError(
                f"cannot read the ids file {label!r}: {why or error}; give a text "
                "file with one instance id per line"
            ) from error
    else:
        label = "standard input"
        text = source.read()

    ids: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        for token in line.split("#", 1)[0].replace(",", " ").split():
            if not _api.is_instance_id(token):
                raise ParameterError(
                    f"{label} line {number}: {token!r} is not an instance id (a UUID)"
                )
            ids.append(token)
    if not ids:
        raise ParameterError(f"{label} holds no instance id")
    try:
        return checked_instance_ids(ids)
    except ValueError as error:
        raise ParameterError(f"{label}: {error}") from error


def checked_flag(name: str, value: object) -> bool:
    """A yes/no parameter: ``True`` or ``False`` and nothing else (a text
    such as ``"false"`` would count as true)."""
    if not isinstance(value, bool):
        raise ParameterError(f"{name} must be True or False, not {value!r}")
    return value


def refuse_secrets(names: Iterable[str], *, notebook: bool = False) -> None:
    """Refuse parameters that look like secrets: a notebook keeps its
    parameters. Credentials come from a profile or the environment.

    ``notebook=True`` is for a runbook's first check, where papermill has
    already written the value into the output notebook.
    """
    secret = sorted(name for name in names if _looks_secret(name))
    if not secret:
        return
    where = (
        "; papermill has already written it into this output notebook: delete "
        "that file and replace the key"
        if notebook
        else " (it would be written into the output notebook)"
    )
    raise ParameterError(
        f"{', '.join(secret)}: never pass a key, token or password as a "
        f"parameter{where}. Set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK in "
        "the environment, or use a profile"
    )


def _looks_secret(name: str) -> bool:
    if name.startswith("_"):  # the kernel's own names
        return False
    lowered = name.lower()
    parts = set(lowered.split("_"))
    return bool(
        lowered in SECRET_NAMES
        or parts & {"sk", "ak"}
        or any(word in lowered for word in SECRET_WORDS)
    )


def protection(tags: object = None, names: object = None) -> list[Protection]:
    """The :class:`dmsnb.Protection` rules for protected tags and names."""
    protected_tags = parse_tags(tags, what="protected tag")
    patterns = parse_names(names, what="protected name")
    if not protected_tags and not patterns:
        return []
    return [Protection(tags=protected_tags, names=patterns, label="protected")]


NOT_A_FAILED_CREATION = Protection(
    predicate=lambda record: record.get("status") != "CREATEFAILED",
    label="not a failed creation (status is not CREATEFAILED)",
    actions=("delete",),
)
"""Keeps ``delete-failed`` by id or by filter from deleting anything else."""


@dataclass(frozen=True)
class Selection:
    """Which instances to act on: filters, or a list of ids.

    Filters all have to match: ``name`` is part of the name (any case),
    ``exact_name`` the whole name, ``status`` one of the service's statuses,
    ``tags`` tag values (``*`` for any value). ``ids`` names instances
    directly; it cannot be combined with filters. ``everything`` selects
    the whole fleet, and must be asked for.
    """

    name: str | None = None
    exact_name: str | None = None
    status: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    ids: tuple[str, ...] = ()
    everything: bool = False

    @classmethod
    def checked(
        cls,
        *,
        name: object = None,
        exact_name: object = None,
        status: object = None,
        tags: object = None,
        ids: object = None,
        ids_file: str | os.PathLike[str] | IO[str] | None = None,
        everything: bool = False,
        required: bool = True,
    ) -> Selection:
        """A selection from parameters, checked before anything is sent."""
        for label, text in (("name", name), ("exact name", exact_name)):
            if text is not None and not isinstance(text, str):
                raise ParameterError(f"the {label} filter must be text, not {text!r}")
        if name and exact_name:
            raise ParameterError("give a part of the name or the exact name, not both")
        given_ids = _ids_parameter(ids)
        if ids_file is not None and ids_file != "":
            if given_ids:
                raise ParameterError("give ids or an ids file, not both")
            given_ids = read_ids(ids_file)
        selection = cls(
            name=str(name) if name else None,
            exact_name=str(exact_name) if exact_name else None,
            status=checked_status(status),
            tags=parse_tags(tags),
            ids=tuple(given_ids),
            everything=bool(everything),
        )
        if given_ids and selection.has_filters:
            raise ParameterError(
                "give instance ids or filters, not both (the ids already say which)"
            )
        if selection.everything and (given_ids or selection.has_filters):
            raise ParameterError("'all' selects the whole fleet; drop it or the rest")
        if required and not (given_ids or selection.has_filters or everything):
            raise ParameterError(
                "select the instances: give filters (name, exact name, status, "
                "tags), instance ids, or an ids file; or ask for all of them"
            )
        return selection

    @property
    def has_filters(self) -> bool:
        return bool(self.name or self.exact_name or self.status or self.tags)

    def describe(self) -> str:
        """The selection in a few words: ``name contains 'stg', status RUNNING``."""
        if self.ids:
            return f"{len(self.ids)} instance id(s)"
        parts = []
        if self.name:
            parts.append(f"name contains {self.name!r}")
        if self.exact_name:
            parts.append(f"name is {self.exact_name!r}")
        if self.status:
            parts.append(f"status {self.status}")
        parts += [f"tag {key}={value}" for key, value in self.tags.items()]
        return ", ".join(parts) or "the whole fleet"

    def matching(self, fleet: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``fleet`` the filters select (every row for ids mode
        whose id was given; ids not in the fleet are for the plan to report)."""
        if self.ids:
            picked: pd.DataFrame = fleet[fleet["instance_id"].isin(self.ids)]
            return picked
        mask = pd.Series(True, index=fleet.index)
        names = fleet["name"].astype("string").fillna("")
        if self.name:
            mask &= names.str.lower().str.contains(self.name.lower(), regex=False)
        if self.exact_name:
            mask &= names == self.exact_name
        if self.status:
            mask &= fleet["status"].astype("string") == self.status
        if self.tags:
            tags = fleet["tags"] if "tags" in fleet.columns else [None] * len(fleet)
            has = [_has_tags(value, self.tags) for value in tags]
            mask &= pd.Series(has, index=fleet.index, dtype=bool)
        chosen: pd.DataFrame = fleet[mask.astype(bool)]
        return chosen

    def instance_ids(self, fleet: pd.DataFrame) -> list[str]:
        """The ids to plan for: the given ids, or those of the matching rows."""
        if self.ids:
            return list(self.ids)
        ids = [str(i) for i in self.matching(fleet)["instance_id"]]
        if not ids:
            raise ParameterError(
                f"no instance matches {self.describe()} (in {len(fleet)} listed); "
                "nothing was sent"
            )
        return ids


def _ids_parameter(ids: object) -> list[str]:
    if ids is None or ids == "" or ids == []:
        return []
    if isinstance(ids, str):
        tokens = ids.replace(",", " ").split()
    elif isinstance(ids, (list, tuple)):
        tokens = [str(i) for i in ids]
    else:
        raise ParameterError(f"ids must be a list of instance ids, not {ids!r}")
    try:
        return checked_instance_ids(tokens)
    except ValueError as error:
        raise ParameterError(str(error)) from error


def _has_tags(tags: object, wanted: Mapping[str, str]) -> bool:
    have: dict[str, str] = {}
    if isinstance(tags, (list, tuple)):
        for tag in tags:
            if isinstance(tag, Mapping) and "key" in tag:
                have[str(tag["key"])] = str(tag.get("value", ""))
    return all(
        key in have and (value == "*" or have[key] == value)
        for key, value in wanted.items()
    )


def check_confirmation(plan: Plan, confirm: int | None, *, dry_run: bool) -> None:
    """Refuse a delete whose confirmation is missing or does not match the plan.

    ``confirm`` is the number of instances that will really go (the plan's
    allowed rows). A dry run needs none, but one that is given must match.
    """
    if plan.action not in ("delete", "delete_failed"):
        return
    skipped = len(plan.frame) - plan.count
    why = f" and skips {skipped}: see the plan" if skipped else ""
    if confirm is None:
        if dry_run:
            return
        raise ParameterError(
            f"deleting destroys data with no backup: confirm with the count, "
            f"{plan.count}, that will be deleted{why}; nothing was sent"
        )
    if confirm != plan.count:
        raise ParameterError(
            f"the confirmation count {confirm} does not match the plan, which "
            f"deletes {plan.count} instance(s){why}; nothing was sent (if the "
            f"plan is right, confirm with {plan.count})"
        )


# -- connecting -------------------------------------------------------------


@dataclass
class Connection:
    """A client, and the embedded simulator it talks to when there is one."""

    client: Client
    simulator: Simulator | None = None

    def __repr__(self) -> str:
        if self.simulator is None:
            return f"<dmsnb connection {self.client!r}>"
        return (
            f"<dmsnb connection to a fresh embedded simulator "
            f"({len(self.simulator.fleet)} instances, seed "
            f"{self.simulator.fleet.seed}) {self.client!r}>"
        )

    def close(self) -> None:
        """Close the client and stop the simulator (safe to call twice)."""
        self.client.close()
        if self.simulator is not None:
            self.simulator.stop()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def connect(
    *,
    simulator: bool = False,
    instances: int = 24,
    seed: int = 7,
    restart_seconds: float = 1.0,
    delete_seconds: float = 1.0,
    profile: str | None = None,
    region: str | None = None,
    endpoint: str | None = None,
    project_id: str | None = None,
    api_version: str = "v2",
    audit: str | os.PathLike[str] | None = DEFAULT_AUDIT_PATH,
    timeout: float | None = None,
    interval: float | None = None,
) -> Connection:
    """A client on a fresh embedded simulator, or on your cloud.

    On the cloud the credentials are found as :meth:`dmsnb.Client.from_profile`
    finds them (a profile, the official SDK's variables or credentials file,
    ``clouds.yaml``), never from an argument; nothing is sent here. ``timeout`` and
    ``interval`` set how long and how often runs follow instances.
    Raises :class:`ParameterError` (with what to do) when something is
    missing or wrong.
    """
    if api_version not in _api.API_VERSIONS:
        raise ParameterError(f"the API version must be v2 or v1, not {api_version!r}")
    if simulator:
        given = [
            label
            for label, value in (
                ("profile", profile),
                ("region", region),
                ("endpoint", endpoint),
                ("project id", project_id),
            )
            if value
        ]
        if given:
            raise ParameterError(
                f"the embedded simulator takes no {', '.join(given)}; drop the "
                "simulator to work on your cloud, or drop those"
            )
        return _simulator_connection(
            instances,
            seed,
            restart_seconds,
            delete_seconds,
            api_version=api_version,
            audit=audit,
            timeout=timeout,
            interval=interval,
        )

    tracking = _tracking(Tracking(), timeout, interval)
    try:
        client = Client.from_profile(
            profile,
            region=region,
            endpoint=endpoint,
            project_id=project_id,
            api_version=api_version,
            audit=audit,
            tracking=tracking,
        )
    except ConfigError as error:
        raise ParameterError(
            f"{error}. To work on the embedded simulator instead, use --simulator "
            "(command line) or simulator = True (runbooks)"
        ) from error
    except ValueError as error:  # an unknown region, a malformed endpoint
        raise ParameterError(str(error)) from error
    return Connection(client)


def _simulator_connection(
    instances: int,
    seed: int,
    restart_seconds: float,
    delete_seconds: float,
    *,
    api_version: str,
    audit: str | os.PathLike[str] | None,
    timeout: float | None,
    interval: float | None,
) -> Connection:
    from .simulator import Simulator, Timings

    if isinstance(instances, bool) or not isinstance(instances, int) or instances < 0:
        raise ParameterError(
            f"the simulator's fleet size must be 0 or more, not {instances!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ParameterError(f"the simulator's seed must be a whole number: {seed!r}")
    timings = Timings(
        restart_seconds=checked_seconds("the simulated restart time", restart_seconds),
        delete_seconds=checked_seconds("the simulated delete time", delete_seconds),
    )
    sim = Simulator(instances=instances, seed=seed, timings=timings).start()
    tracking = _tracking(sim.tracking(), timeout, interval)
    client = sim.client(api_version=api_version, audit=audit, tracking=tracking)
    return Connection(client, sim)


def _tracking(
    base: Tracking, timeout: float | None, interval: float | None
) -> Tracking:
    changes: dict[str, float] = {}
    if timeout is not None:
        changes["timeout"] = checked_seconds("the timeout", timeout)
    if interval is not None:
        changes["interval"] = checked_seconds("the poll interval", interval)
        changes["max_interval"] = max(changes["interval"], base.max_interval)
    return dataclasses.replace(base, **changes)


def region_of(client: Client) -> str:
    """The region a client works in: its own, read off the endpoint, or
    ``simulator``."""
    if client.region:
        return client.region
    if client.is_simulator:
        return "simulator"
    host = urlsplit(client.endpoint).hostname or ""
    parts = host.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "dms" else host


# -- the end of a runbook -----------------------------------------------------


OUTCOME_MIME = "application/vnd.dmsnb.outcome+json"
"""The output type under which a runbook records its outcome for machines."""


@dataclass
class Outcome:
    """What a runbook did, for people (text) and machines (JSON).

    Shown as a cell's result it prints one summary line and records the
    counts, the failed and unknown ids, and what the embedded simulator
    applied, under :data:`OUTCOME_MIME`. :meth:`check` raises
    :class:`InstancesFailed` when any instance failed or stayed unknown.
    """

    runbook: str
    results: pd.DataFrame
    connection: Connection
    audit_path: str | None
    dry_run: bool = False
    plan: Plan | None = None
    summary: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        results = self.results
        counts = {
            name: int((results["result"] == name).sum())
            for name in ("success", "failed", "skipped", "unknown")
        }
        record: dict[str, Any] = {
            "runbook": self.runbook,
            "action": _first(results.get("action")),
            "dry_run": self.dry_run,
            "instances": len(results),
            "counts": counts,
            "failed": _ids_with(results, "failed"),
            "unknown": _ids_with(results, "unknown"),
            "summary": self.summary or str(results.attrs.get("summary", "")),
            "audit": self.audit_path,
            "endpoint": self.connection.client.endpoint,
            "simulator": self.connection.client.is_simulator,
            **self.extra,
        }
        if self.plan is not None:
            record["planned"] = self.plan.count
        sim = self.connection.simulator
        if sim is not None:
            record["simulator_actions"] = len(sim.action_log)
            record["simulator_writes"] = _writes(sim.requests)
        return record

    def text(self) -> str:
        record = self.record()
        lines = [f"[{self.runbook}] {record['summary'] or 'no instances'}"]
        if self.dry_run and self.plan is not None:
            done = "restarted" if self.plan.action == "restart" else "deleted"
            lines.append(
                f"dry run: nothing was sent; {self.plan.count} instance(s) would "
                f"be {done}"
            )
        bad = self.results[self.results["result"].isin(["failed", "unknown"])]
        for row in bad.to_dict("records"):
            lines.append(f"  {row['result']}: {row['instance_id']}: {row['reason']}")
        if self.audit_path:
            lines.append(f"audit trail: {self.audit_path}")
        if "simulator_actions" in record:
            lines.append(
                f"embedded simulator: {record['simulator_actions']} action(s) "
                f"applied, {record['simulator_writes']} write request(s) received"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return {"text/plain": self.text(), OUTCOME_MIME: self.record()}

    def check(self) -> None:
        """Raise :class:`InstancesFailed` when any instance failed or stayed
        unknown; the message names them."""
        record = self.record()
        bad = [*record["failed"], *record["unknown"]]
        if bad:
            raise InstancesFailed(
                f"{len(record['failed'])} instance(s) failed and "
                f"{len(record['unknown'])} stayed unknown: {', '.join(bad)}; see "
                "the results above and the audit trail"
            )


def _first(values: pd.Series | None) -> str | None:
    if values is None:
        return None
    present = values.dropna()
    return None if present.empty else str(present.iloc[0])


def _ids_with(results: pd.DataFrame, result: str) -> list[str]:
    return [str(i) for i in results.loc[results["result"] == result, "instance_id"]]


def _writes(requests: Mapping[tuple[str, str], int]) -> int:
    return sum(n for (method, _), n in requests.items() if method != "GET")


def results_with_names(results: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """The results with the instance names of the plan, for printing."""
    names = plan.frame[["instance_id", "name"]]
    named: pd.DataFrame = results.merge(names, on="instance_id", how="left")
    return named


# -- progress -----------------------------------------------------------------


class Progress:
    """A run's progress: one line rewritten in place on a terminal, plain
    lines (a wave sent, an instance settled) otherwise."""

    def __init__(self, stream: TextIO, *, live: bool | None = None) -> None:
        self.stream = stream
        self.live = _is_terminal(stream) if live is None else live
        self._settled: set[str] = set()
        self._waves: set[int] = set()
        self._drawn = False

    def __call__(self, run: Run) -> None:
        rows = [
            {str(key): value for key, value in row.items()}
            for row in run.results.to_dict("records")
        ]
        if self.live:
            self._draw(run, rows)
        else:
            self._lines(run, rows)

    def close(self) -> None:
        """End the live line, if one was drawn."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def _draw(self, run: Run, rows: list[dict[str, Any]]) -> None:
        counts = run.counts()
        total = len(rows)
        settled = total - counts["pending"]
        waves = [int(row["wave"]) for row in rows if not pd.isna(row["wave"])]
        planned = run.plan.count
        size = run.wave_size or planned or 1
        wave = f", wave {max(waves)}/{math.ceil(planned / size)}" if waves else ""
        parts = ", ".join(
            f"{counts[name]} {name}"
            for name in ("success", "failed", "unknown", "skipped")
            if counts[name]
        )
        line = (
            f"{run.plan.action}: {settled}/{total} settled"
            f"{f' ({parts})' if parts else ''}{wave}, {run.elapsed:.0f} s"
        )
        self.stream.write("\r\x1b[K" + line)
        self.stream.flush()
        self._drawn = True

    def _lines(self, run: Run, rows: list[dict[str, Any]]) -> None:
        frame = run.plan.frame
        names = dict(zip(frame["instance_id"], frame["name"], strict=True))
        waves = Counter(int(row["wave"]) for row in rows if not pd.isna(row["wave"]))
        # The plan already showed what it skips; then each wave and its rows.
        self._settled.update(str(i) for i in run.plan.skipped["instance_id"])
        self._settled_lines([r for r in rows if pd.isna(r["wave"])], names)
        for wave in sorted(set(waves) - self._waves):
            self._waves.add(wave)
            verb = "delete" if run.plan.action == "delete_failed" else run.plan.action
            self._say(f"wave {wave}: {verb} sent for {waves[wave]} instance(s)")
        self._settled_lines([r for r in rows if not pd.isna(r["wave"])], names)

    def _settled_lines(
        self, rows: list[dict[str, Any]], names: Mapping[str, object]
    ) -> None:
        for row in rows:
            instance_id = str(row["instance_id"])
            if pd.isna(row["result"]) or instance_id in self._settled:
                continue
            self._settled.add(instance_id)
            took = "" if pd.isna(row["duration_s"]) else f" ({row['duration_s']:.1f} s)"
            self._say(
                f"{row['result']:<8} {instance_id} {names.get(instance_id) or '-'}: "
                f"{row['reason']}{took}"
            )

    def _say(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# -- the command line -----------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``dmsnb`` command line."""
    parser = argparse.ArgumentParser(
        prog="dmsnb",
        description=(
            "Batch restart and delete of DMS for Kafka instances. Exit status: 0 "
            "done, 1 an instance failed or stayed unknown, 2 a wrong argument "
            "(nothing sent)."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    target = _target_options()
    selection = _selection_options()
    acting = _action_options()

    listing = commands.add_parser(
        "instances",
        parents=[target, selection],
        help="list the instances (table, CSV, JSON or ids)",
        description="List the instances, failed creations included.",
    )
    listing.add_argument(
        "--format",
        choices=("table", "csv", "json", "ids"),
        default="table",
        help="output format (default %(default)s; ids: one id per line)",
    )
    listing.add_argument(
        "--columns",
        help="comma-separated columns, or 'all' (default: "
        + ",".join(LISTED_COLUMNS)
        + ")",
    )

    commands.add_parser(
        "restart",
        parents=[target, selection, acting],
        help="restart instances and follow them until RUNNING again",
        description="Restart the selected RUNNING instances, in waves if asked, "
        "and follow each until it is RUNNING again.",
    )
    commands.add_parser(
        "delete",
        parents=[target, selection, acting, _delete_options()],
        help="delete instances (needs --confirm N)",
        description="Delete the selected instances and follow each until it is "
        "gone. Deleting destroys the data with no backup.",
    )
    commands.add_parser(
        "delete-failed",
        parents=[target, selection, acting, _delete_options()],
        help="delete the instances whose creation failed (needs --confirm N)",
        description="Delete the instances whose creation failed (all of them, or "
        "those the filters or ids pick) and follow each until it is gone.",
    )

    run = commands.add_parser(
        "run",
        parents=[target],
        help="execute a runbook notebook with papermill",
        description="Execute a runbook (a path, or one of: "
        + ", ".join(RUNBOOKS)
        + ") headless and write the executed notebook.",
    )
    run.add_argument("runbook", help="path of a notebook, or a runbook's short name")
    run.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="set a parameter (True/False/None, numbers and JSON lists are read "
        "as such); repeatable",
    )
    run.add_argument("-o", "--output", help="the executed notebook's path")
    run.add_argument("--kernel", help="the Jupyter kernel to run it on")
    run.add_argument(
        "--list-parameters",
        action="store_true",
        help="print the runbook's parameters and exit",
    )

    lab = commands.add_parser(
        "lab",
        help="open the quickstart (on the simulator) in JupyterLab",
        description="Start JupyterLab on the quickstart notebook, which runs on "
        "the embedded simulator.",
    )
    lab.add_argument(
        "--print-command",
        action="store_true",
        help="print the command that would start JupyterLab, and exit",
    )
    lab.add_argument("--port", type=int, help="the port JupyterLab listens on")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.add_argument(
        "--simulator",
        action="store_true",
        help="accepted for symmetry: the quickstart always runs on the simulator",
    )

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
    demo.add_argument(
        "--simulator",
        action="store_true",
        help="accepted for symmetry: the demo always runs on the simulator",
    )

    commands.add_parser(
        "simulator",
        help="serve a simulator (see 'dmsnb simulator --help')",
        add_help=False,
    )
    return parser


def _target_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group(
        "where",
        "a fresh embedded simulator, or your cloud with the credentials of a "
        "profile, the HUAWEICLOUD_SDK_* variables, the SDK's credentials file "
        "or clouds.yaml",
    )
    add = group.add_argument
    add(
        "--simulator",
        action="store_true",
        help="work on a fresh embedded simulator (nothing leaves this machine)",
    )
    add(
        "--instances",
        type=int,
        metavar="N",
        help="simulator fleet size (24; for 'run', the runbook's own default, 30)",
    )
    add("--seed", type=int, metavar="N", help="simulator fleet seed (7)")
    add("--restart-seconds", type=float, metavar="S", help="simulated restart (1 s)")
    add("--delete-seconds", type=float, metavar="S", help="simulated delete (1 s)")
    add("--profile", metavar="NAME", help="the credentials profile to use")
    add("--region", help="the region, e.g. eu-de or ap-southeast-1")
    add("--endpoint", metavar="URL", help="the DMS endpoint, instead of a region")
    add(
        "--project-id",
        metavar="ID",
        help="the project id (default: HUAWEICLOUD_SDK_PROJECT_ID)",
    )
    add("--api-version", choices=_api.API_VERSIONS, default="v2")
    add(
        "--audit",
        default=DEFAULT_AUDIT_PATH,
        metavar="PATH",
        help="the audit trail's path (default %(default)s)",
    )
    add("--no-audit", action="store_true", help="write no audit trail")
    return options


def _selection_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group(
        "which instances", "filters (all must match), or ids; not both"
    )
    add = group.add_argument
    add("--name", help="part of the name (any case)")
    add("--exact-name", help="the whole name")
    add("--status", help="one status, e.g. RUNNING or ERROR")
    add(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a tag the instance has ('*' for any value); repeatable",
    )
    add(
        "--id",
        dest="ids",
        action="append",
        default=[],
        metavar="ID",
        help="an instance id; repeatable",
    )
    add("--ids-file", metavar="PATH", help="a file of instance ids; - reads stdin")
    add("--all", action="store_true", help="the whole fleet (actions only)")
    return options


def _action_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("how")
    add = group.add_argument
    add(
        "--dry-run",
        action="store_true",
        help="show what would be done and send nothing",
    )
    add(
        "--wave-size",
        type=int,
        metavar="N",
        help="instances per wave (default: one wave)",
    )
    add("--pause", type=float, default=0.0, metavar="S", help="seconds between waves")
    add(
        "--no-stop-on-failure",
        dest="stop_on_failure",
        action="store_false",
        help="go on with the next waves after a failure",
    )
    add(
        "--timeout",
        type=float,
        metavar="S",
        help="seconds to follow an instance (1800)",
    )
    add("--interval", type=float, metavar="S", help="seconds between status reads (2)")
    add(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="results format (default %(default)s)",
    )
    return options


def _delete_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("deleting")
    add = group.add_argument
    add(
        "--confirm",
        type=int,
        metavar="N",
        help="how many instances will be deleted (required unless --dry-run)",
    )
    add(
        "--protect-tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="never delete instances with this tag; repeatable",
    )
    add(
        "--protect-name",
        action="append",
        default=[],
        metavar="PATTERN",
        help="never delete instances whose name matches (e.g. '*-prod-*')",
    )
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dmsnb`` command; return its exit status."""
    parser = build_parser()
    try:
        args, rest = parser.parse_known_args(argv)
    except SystemExit as stop:  # argparse: --help, or a malformed argument
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE

    if args.command == "simulator":
        from .simulator.__main__ import main as simulator_main

        return simulator_main(rest, prog="dmsnb simulator")
    if rest:
        _error(args.command, f"unrecognized arguments: {' '.join(rest)}")
        return EXIT_USAGE

    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "instances": command_instances,
        "restart": command_action,
        "delete": command_action,
        "delete-failed": command_action,
        "run": command_run,
        "lab": command_lab,
        "demo": command_demo,
    }
    try:
        return commands[args.command](args)
    except (ConfigError, PlanError, ValueError) as error:
        # Found before anything was sent: a wrong argument or selection.
        _error(args.command, str(error))
        return EXIT_USAGE
    except DMSError as error:
        _error(args.command, str(error))
        return EXIT_FAILED


def _error(command: str, message: str) -> None:
    print(f"dmsnb {command}: error: {message}", file=sys.stderr, flush=True)


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _connect(args: argparse.Namespace) -> Connection:
    simulated = {
        "--instances": args.instances,
        "--seed": args.seed,
        "--restart-seconds": args.restart_seconds,
        "--delete-seconds": args.delete_seconds,
    }
    given = [flag for flag, value in simulated.items() if value is not None]
    if given and not args.simulator:
        raise ParameterError(f"{', '.join(given)}: only with --simulator")
    return connect(
        simulator=args.simulator,
        instances=24 if args.instances is None else args.instances,
        seed=7 if args.seed is None else args.seed,
        restart_seconds=1.0 if args.restart_seconds is None else args.restart_seconds,
        delete_seconds=1.0 if args.delete_seconds is None else args.delete_seconds,
        profile=args.profile,
        region=args.region,
        endpoint=args.endpoint,
        project_id=args.project_id,
        api_version=args.api_version,
        audit=None if args.no_audit else args.audit,
        timeout=getattr(args, "timeout", None),
        interval=getattr(args, "interval", None),
    )


def _selection(args: argparse.Namespace, *, required: bool) -> Selection:
    ids_file: str | IO[str] | None = args.ids_file
    if ids_file == "-":
        ids_file = sys.stdin
    return Selection.checked(
        name=args.name,
        exact_name=args.exact_name,
        status=args.status,
        tags=args.tag,
        ids=args.ids,
        ids_file=ids_file,
        everything=args.all,
        required=required,
    )


# -- dmsnb instances ----------------------------------------------------------


def command_instances(args: argparse.Namespace) -> int:
    """List the fleet, filtered, in the asked format."""
    selection = _selection(args, required=False)

    with _connect(args) as connection:
        fleet = connection.client.instances(include_failed=True)
    shown = selection.matching(fleet)
    columns = _columns(args.columns, shown)

    out = sys.stdout
    if args.format == "ids":
        for instance_id in shown["instance_id"]:
            print(instance_id, file=out)
    else:
        _write_frame(shown[columns], args.format, out)
    _note(f"{len(shown)} of {len(fleet)} instance(s): {selection.describe()}")
    return EXIT_OK


def _columns(wanted: str | None, frame: pd.DataFrame) -> list[str]:
    if wanted is None:
        return [c for c in LISTED_COLUMNS if c in frame.columns]
    if wanted.strip() == "all":
        return list(frame.columns)
    columns = [c.strip() for c in wanted.split(",") if c.strip()]
    unknown = [c for c in columns if c not in frame.columns]
    if unknown or not columns:
        raise ParameterError(
            f"unknown columns {', '.join(unknown) or '(none given)'}; the listed "
            f"instances have: {', '.join(map(str, frame.columns))}"
        )
    return columns


def _write_frame(frame: pd.DataFrame, form: str, out: TextIO) -> None:
    if form == "json":
        records = json.loads(
            frame.to_json(orient="records", date_format="iso", default_handler=str)
        )
        json.dump(records, out, indent=1, ensure_ascii=False)
        out.write("\n")
        return
    flat = frame.copy()
    for column in flat.columns:
        if flat[column].map(lambda v: isinstance(v, (list, tuple))).any():
            flat[column] = flat[column].map(_flat_list)
    if form == "csv":
        flat.to_csv(out, index=False)
    elif flat.empty:
        print("(none)", file=out)
    else:
        for column in flat.columns:
            if pd.api.types.is_datetime64_any_dtype(flat[column]):
                flat[column] = flat[column].dt.strftime("%Y-%m-%d %H:%M")
        shown = flat.astype(object).where(flat.notna(), "-")
        print(shown.to_string(index=False), file=out)


def _flat_list(value: object) -> object:
    if not isinstance(value, (list, tuple)):
        return value
    parts = []
    for item in value:
        if isinstance(item, Mapping) and "key" in item:
            parts.append(f"{item['key']}={item.get('value', '')}")
        else:
            parts.append(str(item))
    return ";".join(parts)


# -- dmsnb restart / delete / delete-failed ----------------------------------


@dataclass(frozen=True)
class _ActionSettings:
    action: str
    selection: Selection
    wave_size: int | None
    pause_seconds: float
    confirm: int | None
    protect: list[Protection]


def _action_settings(args: argparse.Namespace) -> _ActionSettings:
    """Every argument of an action, checked before anything is sent."""
    action = {"delete-failed": "delete_failed"}.get(args.command, args.command)
    deleting = action != "restart"
    selection = _selection(args, required=action != "delete_failed")
    if action == "delete_failed" and selection.status not in (None, "CREATEFAILED"):
        raise ParameterError(
            "delete-failed deletes failed creations (status CREATEFAILED) only; "
            f"drop --status {selection.status}"
        )
    if action == "delete_failed" and selection.everything:
        raise ParameterError("delete-failed takes every failed creation without --all")
    wave_size = checked_wave_size(args.wave_size)
    pause = checked_seconds("--pause", args.pause, zero=True)
    if args.timeout is not None:
        checked_seconds("--timeout", args.timeout)
    if args.interval is not None:
        checked_seconds("--interval", args.interval)

    confirm = checked_count("--confirm", getattr(args, "confirm", None))
    if deleting and confirm is None and not args.dry_run:
        raise ParameterError(
            "deleting destroys data with no backup: say how many instances will "
            "go with --confirm N (see them first with --dry-run); nothing was sent"
        )
    if confirm is not None and selection.ids and confirm > len(selection.ids):
        raise ParameterError(
            f"--confirm {confirm} does not match: only {len(selection.ids)} "
            "instance id(s) were given; nothing was sent"
        )
    protect: list[Protection] = []
    if deleting:
        protect = protection(args.protect_tag, args.protect_name)
    return _ActionSettings(action, selection, wave_size, pause, confirm, protect)


def command_action(args: argparse.Namespace) -> int:
    """``restart``, ``delete`` or ``delete-failed``: plan, act, follow, report."""
    settings = _action_settings(args)
    stdout = sys.stdout
    human = args.format == "table"

    with _connect(args) as connection:
        client = connection.client
        _note(repr(client))
        fleet = client.instances(include_failed=True)
        plan = _plan(client, settings, fleet)
        picked = settings.selection
        which = (
            picked.describe()
            if picked.ids or picked.has_filters or settings.action != "delete_failed"
            else "every failed creation"
        )
        _note(f"plan: {plan.summary()} ({which})")
        for row in plan.skipped.to_dict("records"):
            _note(
                f"  skipped {row['instance_id']} {row['name'] or '-'}: {row['reason']}"
            )
        check_confirmation(plan, settings.confirm, dry_run=args.dry_run)
        if plan.count == 0 and not args.dry_run:
            return _nothing_to_do(plan, stdout if human else sys.stderr)

        progress = Progress(sys.stderr)
        try:
            results = client.execute(
                plan,
                confirm=settings.confirm,
                dry_run=args.dry_run,
                wave_size=settings.wave_size,
                stop_on_failure=args.stop_on_failure,
                pause_seconds=settings.pause_seconds,
                # A dry run settles at once: its rows are the report below.
                on_progress=None if args.dry_run else progress,
            )
        except KeyboardInterrupt:
            progress.close()
            run = client.last_run
            if run is not None:
                _report(run.results, plan, args, interrupted=True)
            _error(args.command, "interrupted; the rows above say what is known")
            return EXIT_INTERRUPTED
        progress.close()
    return _report(results, plan, args)


def _plan(client: Client, settings: _ActionSettings, fleet: pd.DataFrame) -> Plan:
    if settings.action == "delete_failed":
        return failed_creations_plan(
            client, settings.selection, fleet, settings.protect
        )
    ids = settings.selection.instance_ids(fleet)
    return client.plan(settings.action, ids, protect=settings.protect, fleet=fleet)


def failed_creations_plan(
    client: Client,
    selection: Selection,
    fleet: pd.DataFrame,
    protect: Sequence[Protection] = (),
) -> Plan:
    """The plan to delete failed creations: all of them (the service's
    all-failure call), or those ``selection`` picks, by id, and never an
    instance whose status is not ``CREATEFAILED``."""
    if not (selection.ids or selection.has_filters):
        return client.plan("delete_failed", protect=protect, fleet=fleet)
    failed = fleet[fleet["status"] == "CREATEFAILED"]
    if selection.ids:
        ids = list(selection.ids)
    else:
        ids = [str(i) for i in selection.matching(failed)["instance_id"]]
    if not ids:
        raise ParameterError(
            f"no failed creation matches {selection.describe()} ({len(failed)} "
            "failed creation(s) listed); nothing was sent"
        )
    rules = [*protect, NOT_A_FAILED_CREATION]
    return client.plan("delete", ids, protect=rules, fleet=fleet)


def _nothing_to_do(plan: Plan, out: TextIO) -> int:
    if plan.action == "delete_failed" and plan.frame.empty:
        print("no instance's creation failed; nothing was sent", file=out)
        return EXIT_OK
    raise PlanError(f"the plan has nothing to do ({plan.summary()}); nothing was sent")


def _report(
    results: pd.DataFrame,
    plan: Plan,
    args: argparse.Namespace,
    *,
    interrupted: bool = False,
) -> int:
    human = args.format == "table"
    out = sys.stdout
    notes = out if human else sys.stderr
    named = results_with_names(results, plan)
    _write_frame(
        named[[c for c in RESULT_COLUMNS if c in named.columns]], args.format, out
    )

    summary = str(results.attrs.get("summary", ""))
    if plan.use_all_failure and not args.dry_run:
        summary += all_failure_note(plan.count)
    print(("\n" if human else "") + summary, file=notes)
    if args.dry_run:
        verb = "restart" if plan.action == "restart" else "delete"
        again = "" if verb == "restart" else f" and with --confirm {plan.count}"
        waves = ""
        if args.wave_size and plan.count > args.wave_size:
            waves = f" in {math.ceil(plan.count / args.wave_size)} waves"
        print(
            f"dry run: nothing was sent; run again without --dry-run{again} to "
            f"{verb} {plan.count} instance(s){waves}",
            file=notes,
        )
    if not args.no_audit:
        print(f"audit trail: {args.audit}", file=notes)

    bad = named[named["result"].isin(["failed", "unknown"])]
    if len(bad):
        print(f"{len(bad)} instance(s) failed or stayed unknown:", file=notes)
        for row in bad.to_dict("records"):
            line = f"  {row['result']} {row['instance_id']} {row['name'] or '-'}"
            print(f"{line}: {row['reason']}", file=notes)
        return EXIT_FAILED
    # An id the user named that is in no instance of the project was never
    # acted on: a script must not read that as success.
    reasons = named["reason"].fillna("")
    unknown_ids = named[reasons.str.startswith("not in the fleet")]
    if len(unknown_ids):
        print(f"{len(unknown_ids)} named id(s) are not in the fleet:", file=notes)
        for instance_id in unknown_ids["instance_id"]:
            print(f"  {instance_id}", file=notes)
        return EXIT_FAILED
    return EXIT_INTERRUPTED if interrupted else EXIT_OK


# -- dmsnb run ------------------------------------------------------------------


def command_run(args: argparse.Namespace) -> int:
    """Execute a runbook with papermill; the exit status says how it went."""
    notebook = find_runbook(args.runbook)
    try:
        import papermill  # type: ignore[import-untyped]
    except ImportError:
        raise ParameterError(
            "running a runbook needs papermill: pip install 'dmsnb[notebook]'"
        ) from None

    declared = papermill.inspect_notebook(str(notebook))
    if args.list_parameters:
        for name, info in declared.items():
            help_text = f"  # {info['help']}" if info.get("help") else ""
            print(f"{name} = {info['default']}{help_text}")
        return EXIT_OK

    parameters = runbook_parameters(args, declared)
    output = Path(args.output) if args.output else _default_output(notebook)
    _note(f"running {notebook} -> {output}")
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters,
            kernel_name=args.kernel,
            progress_bar=_is_terminal(sys.stderr),
            cwd=None,
        )
    except papermill.PapermillExecutionError as error:
        return _runbook_failed(error, output)
    except KeyboardInterrupt:
        _error("run", f"interrupted; the executed notebook so far: {output}")
        return EXIT_INTERRUPTED
    print(_outcome_text(output), file=sys.stdout)
    _note(f"executed notebook: {output}")
    return EXIT_OK


def find_runbook(name: str) -> Path:
    """A runbook by path or short name (``rolling-restart`` ...)."""
    path = Path(name)
    if path.is_file():
        return path
    folders = [
        Path.cwd() / "notebooks",
        Path(__file__).resolve().parent.parent / "notebooks",
    ]
    for folder in folders:
        for candidate in (f"runbook-{name}.ipynb", f"{name}.ipynb"):
            if (folder / candidate).is_file():
                return folder / candidate
    raise ParameterError(
        f"no runbook {name!r}: give a notebook's path or one of {', '.join(RUNBOOKS)} "
        "(looked in ./notebooks)"
    )


def parse_value(text: str) -> object:
    """A parameter's value from the command line: True/False/None, a number,
    a JSON list or object, or else the text itself."""
    if text in ("True", "False"):
        return text == "True"
    if text == "None":
        return None
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    if text[:1] in ("[", "{"):
        try:
            value: object = json.loads(text)
        except ValueError as error:
            raise ParameterError(f"{text!r} is not valid JSON: {error}") from error
        return value
    return text


def runbook_parameters(
    args: argparse.Namespace, declared: Mapping[str, Any]
) -> dict[str, object]:
    """The parameters for papermill: the ``-p`` pairs and the target options,
    checked against the names the runbook declares."""
    parameters: dict[str, object] = {}
    for name, text in args.parameter:
        parameters[name] = parse_value(text)
    refuse_secrets(parameters)

    targets: dict[str, object] = {}
    if args.simulator:
        targets["simulator"] = True
    if args.instances is not None:
        targets["simulator_instances"] = args.instances
    if args.seed is not None:
        targets["simulator_seed"] = args.seed
    for name in ("profile", "region", "endpoint", "project_id"):
        if getattr(args, name):
            targets[name] = getattr(args, name)
    if args.no_audit:
        raise ParameterError(
            "a runbook always writes its audit trail; use --audit PATH"
        )
    if args.restart_seconds is not None or args.delete_seconds is not None:
        raise ParameterError(
            "a runbook's simulator has its own timings; drop --restart-seconds "
            "and --delete-seconds"
        )
    if args.audit != DEFAULT_AUDIT_PATH:
        targets["audit_path"] = args.audit
    clash = sorted(set(targets) & set(parameters))
    if clash:
        raise ParameterError(f"{', '.join(clash)} given twice (as an option and -p)")
    parameters.update(targets)

    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ParameterError(
            f"the runbook has no parameter {', '.join(unknown)}; it has: "
            f"{', '.join(declared)} (see dmsnb run RUNBOOK --list-parameters)"
        )
    return parameters


def _default_output(notebook: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path.cwd() / f"{notebook.stem}-{stamp}.ipynb"


def read_outcome(output: Path) -> dict[str, Any] | None:
    """The outcome a runbook recorded in its executed notebook, if any."""
    shown = _outcome_output(output)
    record = None if shown is None else shown.get(OUTCOME_MIME)
    return record if isinstance(record, dict) else None


def _outcome_output(output: Path) -> dict[str, Any] | None:
    try:
        notebook = json.loads(output.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for cell in notebook.get("cells", []):
        for item in cell.get("outputs", []):
            data = item.get("data", {})
            if OUTCOME_MIME in data:
                return dict(data)
    return None


def _outcome_text(output: Path) -> str:
    shown = _outcome_output(output)
    if shown is None:
        return "the runbook recorded no outcome"
    text = shown.get("text/plain", "")
    return "".join(text) if isinstance(text, list) else str(text)


def _runbook_failed(error: Any, output: Path) -> int:
    ename = str(getattr(error, "ename", "Error"))
    evalue = str(getattr(error, "evalue", ""))
    if ename in ("ParameterError", "PlanError"):
        _error("run", f"{evalue} (executed notebook: {output})")
        return EXIT_USAGE
    if _outcome_output(output) is not None:
        print(_outcome_text(output), file=sys.stdout)
    _error("run", f"{ename}: {evalue} (executed notebook: {output})")
    return EXIT_FAILED


# -- dmsnb lab --------------------------------------------------------------------


def lab_command(
    *, port: int | None = None, no_browser: bool = False
) -> tuple[list[str], Path]:
    """The command that opens the quickstart in JupyterLab, and its folder."""
    notebook = find_quickstart()
    root = notebook.parent.parent
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.ip=127.0.0.1",
    ]
    if port is not None:
        command.append(f"--ServerApp.port={port}")
    if no_browser:
        command.append("--no-browser")
    command.append(str(notebook))
    return command, root


def find_quickstart() -> Path:
    """``notebooks/quickstart.ipynb`` of this checkout or the current folder."""
    for folder in (Path.cwd(), Path(__file__).resolve().parent.parent):
        notebook = folder / "notebooks" / "quickstart.ipynb"
        if notebook.is_file():
            return notebook
    raise ParameterError(
        "cannot find notebooks/quickstart.ipynb; run dmsnb lab in a clone of the "
        "dmsnb repository"
    )


def command_lab(args: argparse.Namespace) -> int:
    """Start JupyterLab on the quickstart (or print the command)."""
    command, root = lab_command(port=args.port, no_browser=args.no_browser)
    if args.print_command:
        print(shlex.join(command))
        return EXIT_OK
    if importlib.util.find_spec("jupyterlab") is None:
        raise ParameterError(
            "JupyterLab is not installed: pip install 'dmsnb[notebook]'"
        )
    _note("starting JupyterLab on the quickstart; stop it with Ctrl-C")
    try:
        return subprocess.call(command, cwd=root)
    except KeyboardInterrupt:
        return EXIT_OK


# -- dmsnb demo -------------------------------------------------------------------


def command_demo(args: argparse.Namespace) -> int:
    if args.instances < 4:
        raise ParameterError("--instances must be at least 4 for the demo")
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
    out: TextIO | None = None,
) -> int:
    """The quickstart flow in a terminal. Returns the exit status."""
    from .simulator import Simulator, Timings

    say = _printer(out or sys.stdout)
    timings = Timings(restart_seconds=restart_seconds, delete_seconds=delete_seconds)
    simulator = Simulator(instances=instances, seed=seed, timings=timings)
    with simulator as sim, sim.client(audit=None) as client:
        say(f"{client!r}")

        fleet = client.instances(include_failed=True)
        say(f"\nThe fleet: {len(fleet)} instances")
        say(fleet["status"].value_counts().to_string())

        # Even on a simulator, the demo keeps its hands off "prod".
        running = fleet[
            (fleet["status"] == "RUNNING") & ~fleet["name"].str.contains("-prod-")
        ]
        to_restart = list(running["instance_id"][:3])
        to_delete = list(running["instance_id"][3:4])

        say(f"\nRestarting {len(to_restart)} RUNNING instances, following each ...")
        restarted = client.restart(to_restart)
        say(restarted.attrs["summary"])

        plan = client.plan("delete", to_delete)
        say(f"Deleting: {plan.summary()} (confirm={plan.count}) ...")
        deleted = client.execute(plan, confirm=plan.count)
        say(deleted.attrs["summary"])

        failed = client.plan("delete_failed")
        say(f"Failed creations: {failed.summary()} (confirm={failed.count}) ...")
        cleanup = client.delete_failed(confirm=failed.count)
        say(cleanup.attrs["summary"])

    results = pd.concat(
        [frame for frame in (restarted, deleted, cleanup) if len(frame)],
        ignore_index=True,
    )
    merged = merge_results(fleet, results)
    acted = merged[merged["result"].notna()]
    say("\nThe merged table, acted-on rows:")
    say(acted[SHOWN_COLUMNS].to_string(index=False))
    say("\nThe fleet by status before, and result:")
    say(merged.groupby(["status", "result"], dropna=False).size().to_string())

    bad = acted[acted["result"].isin(["failed", "unknown"])]
    if len(bad):
        ids = ", ".join(bad["instance_id"])
        say(f"\n{len(bad)} instance(s) failed or stayed unknown: {ids}")
        return 1
    return 0


def _printer(out: TextIO) -> Callable[[str], None]:
    def say(text: str) -> None:
        print(text, file=out, flush=True)

    return say


if __name__ == "__main__":
    sys.exit(main())
