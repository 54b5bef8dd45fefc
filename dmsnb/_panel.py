"""``Panel``: find and pick instances, read the plan, act, watch, use the result.

The panel is one composite widget over the calls a notebook cell makes:
:meth:`Client.instances` for the fleet table, :meth:`Client.plan` for the
plan, :meth:`Client.run` for the Run button. It decides nothing of its own:
what may be touched, and why not, is the plan's; the panel only asks twice
before anything is deleted.

Four areas, top to bottom:

- **Find and pick.** Filters (statuses, name, engine version, tags) narrow
  the fleet table; rows are picked by clicking. The selection is a set of
  instance ids, so it survives sorting, filtering and refreshing; an
  instance hidden by the filter stays selected, and the panel says how many
  are hidden.
- **Act.** Restart, rolling restart (waves), delete, delete failed
  creations. The plan lists every planned instance, whether it is acted on
  or skipped, and why; Run stays disabled until the plan has something to
  do, and a delete needs its count typed in.
- **Watch.** A progress bar, the counts per state, the elapsed time and the
  rows of the results as instances settle; Cancel stops further calls and
  tracking.
- **Use the result.** The merged table with coloured statuses and results,
  a one-line summary, CSV and Parquet export, and the frames for the next
  cell (:attr:`Panel.plan_frame`, :attr:`Panel.merged`).

The fleet table is itables' ``ITable`` widget. Its ``selected_rows`` trait
holds positions into the frame the widget was given (the filtered fleet);
the panel turns them into instance ids at once. The whole filtered frame is
sent to the browser, never downsampled, so that every row can be selected.

Long work (a refresh, a run) runs in one daemon thread at a time, so the
kernel keeps answering other cells; :meth:`Panel.wait` joins it. Every
callback is guarded: an error is shown in the panel's message area with what
to do next, and the warnings dmsnb logs while the panel works are shown
there too.
"""

from __future__ import annotations

import contextlib
import fnmatch
import html
import importlib.util
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

try:
    import ipywidgets as widgets
    from itables.widget import ITable
except ImportError as error:  # the notebook extra is not installed
    raise ImportError(
        "dmsnb.Panel needs ipywidgets and itables; install them with: "
        "pip install 'dmsnb[notebook]'"
    ) from error

from ._client import Client
from ._errors import (
    ActionOutcomeUnknown,
    APIError,
    AuthError,
    ConfigError,
    DMSError,
    NotFoundError,
    TransportError,
)
from ._frames import merge_results
from ._ids import checked_instance_ids
from ._plan import Plan, Protection
from ._run import PlanError, Run, Tracking

logger = logging.getLogger(__name__)

GRID_COLUMNS: tuple[str, ...] = (
    "instance_id",
    "name",
    "status",
    "engine_version",
    "specification",
    "created_at",
    "tags",
)
"""The columns of the fleet table, every cell shown as text."""

RESULT_GRID_COLUMNS: tuple[str, ...] = (
    "instance_id",
    "name",
    "result",
    "reason",
    "status_before",
    "status_after",
    "requested_at",
    "duration_s",
    "wave",
    "error_code",
    "request_id",
)
"""The columns of the results table (the planned rows of the merged frame)."""

ACTIONS: tuple[tuple[str, str], ...] = (
    ("restart", "restart"),
    ("rolling restart", "rolling_restart"),
    ("delete", "delete"),
    ("delete failed creations", "delete_failed"),
)
"""The action picker's choices: (label, value)."""

_ACTION_LABELS = {value: label for label, value in ACTIONS}
DELETING = frozenset({"delete", "delete_failed"})

RESULT_COLOURS: dict[str, str] = {
    "success": "#1a7f37",
    "failed": "#cf222e",
    "unknown": "#9a6700",
    "skipped": "#57606a",
}
STATUS_COLOURS: dict[str, str] = {
    "RUNNING": "#1a7f37",
    "ERROR": "#cf222e",
    "CREATEFAILED": "#cf222e",
    "EXTENDEDFAILED": "#cf222e",
    "FROZEN": "#57606a",
    "GONE": "#57606a",
    "RECYCLE": "#57606a",
}
"""Statuses not named here are transitional and shown in amber."""
TRANSITIONAL_COLOUR = "#9a6700"

PLAN_ROWS_SHOWN = 200
MESSAGES_KEPT = 12
PROGRESS_EVERY = 0.2
"""Seconds between two updates of the progress bar and counts during a run."""
ROWS_EVERY = 1.0
"""Seconds between two updates of the results table during a run."""
NAME_PATTERN_CHARACTERS = frozenset("*?[")

_TABLE_OPTIONS: dict[str, Any] = {
    # Send every row: itables downsamples past 64 KB by default, and a row
    # that is not sent cannot be selected.
    "maxBytes": 0,
    "maxRows": 0,
    "maxColumns": 0,
    "showIndex": False,
    "order": [],
    "lengthMenu": [10, 25, 50, 100, 500],
    "scrollX": True,
}
_FLEET_TABLE_OPTIONS: dict[str, Any] = {
    **_TABLE_OPTIONS,
    # A click toggles a row, shift-click selects a range; no ctrl needed.
    "select": {"style": "multi+shift"},
    # The panel's filters are the one way to narrow the table, so that
    # "select all shown" and the hidden count mean what they say.
    "layout": {"topEnd": None},
    # Names and tags come from the service: itables escapes them.
    "allow_html": False,
}
_RESULT_TABLE_OPTIONS: dict[str, Any] = {
    **_TABLE_OPTIONS,
    # The panel escapes every cell itself before it colours it.
    "allow_html": True,
}


# -- filters -----------------------------------------------------------------


@dataclass(frozen=True)
class FleetFilter:
    """What the fleet table shows: every condition given must hold.

    ``statuses``: any of them (none given: any status). ``name``: part of the
    name, ignoring case, or a shell pattern when it has ``*``, ``?`` or
    ``[`` (``kafka-*-prod``, matched against the whole name, ignoring case).
    ``engine_version``: exactly this version. ``tags``: ``(key, value)``
    pairs the instance must all have; a value of ``None`` only needs the key.
    """

    statuses: tuple[str, ...] = ()
    name: str = ""
    engine_version: str = ""
    tags: tuple[tuple[str, str | None], ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.statuses or self.name or self.engine_version or self.tags)

    def describe(self) -> str:
        """The conditions in a few words, e.g. ``status RUNNING; name *-prod``."""
        parts = []
        if self.statuses:
            parts.append("status " + " or ".join(self.statuses))
        if self.name:
            parts.append(f"name {self.name}")
        if self.engine_version:
            parts.append(f"engine {self.engine_version}")
        for key, value in self.tags:
            parts.append(f"tag {key}" if value is None else f"tag {key}={value}")
        return "; ".join(parts) or "none"


def parse_tag_filter(text: str) -> tuple[tuple[str, str | None], ...]:
    """``"env=prod, team"`` -> ``(("env", "prod"), ("team", None))``.

    Raises ``ValueError`` saying how to write it when a part has no key.
    """
    pairs: list[tuple[str, str | None]] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, equals, value = part.partition("=")
        key = key.strip()
        if not key:
            raise ValueError(
                f"tag filter {part!r} has no key: write key=value (or just key), "
                "several separated by commas"
            )
        pairs.append((key, value.strip() if equals else None))
    return tuple(pairs)


def name_mask(names: pd.Series, text: str) -> pd.Series:
    """Which ``names`` match ``text``: a part of them, or a shell pattern."""
    matched: pd.Series
    if not text:
        matched = pd.Series(True, index=names.index)
    elif NAME_PATTERN_CHARACTERS & set(text):
        pattern = re.compile(fnmatch.translate(text), re.IGNORECASE)
        matched = names.map(lambda name: bool(pattern.match(name)))
    else:
        matched = names.str.contains(text, case=False, regex=False)
    return matched


def filter_mask(
    grid: pd.DataFrame, tag_maps: Sequence[Mapping[str, str]], wanted: FleetFilter
) -> pd.Series:
    """The rows of the fleet table ``grid`` that ``wanted`` shows."""
    mask: pd.Series = pd.Series(True, index=grid.index)
    if wanted.statuses:
        mask &= grid["status"].isin(wanted.statuses)
    if wanted.name:
        mask &= name_mask(grid["name"], wanted.name)
    if wanted.engine_version:
        mask &= grid["engine_version"] == wanted.engine_version
    for key, value in wanted.tags:
        has = [
            key in tags and (value is None or tags[key] == value) for tags in tag_maps
        ]
        mask &= pd.Series(has, index=grid.index, dtype=bool)
    return mask


# -- the panel ---------------------------------------------------------------


class Panel:
    """A widget to restart or delete selected instances of ``client``'s project.

    Show it as the last expression of a cell. Narrow the table with the
    filters, pick rows by clicking them (or by code with :meth:`select`),
    choose the action, read the plan, and click Run; deleting also needs the
    number of instances typed in. After a run, :attr:`results` and
    :attr:`merged` hold the frames for the next cell, and :meth:`export`
    writes them to a file.

    ``include_failed`` lists the instances whose creation failed too;
    ``protect`` holds :class:`dmsnb.Protection` rules every plan applies;
    ``track`` and ``tracking`` are passed to every run (see
    :class:`dmsnb.Tracking`); ``export_folder`` is where the export buttons
    write (default: the current folder, which is the notebook's).
    """

    def __init__(
        self,
        client: Client,
        *,
        include_failed: bool = True,
        protect: Protection | Sequence[Protection] = (),
        track: bool = True,
        tracking: Tracking | None = None,
        export_folder: str | os.PathLike[str] | None = None,
    ) -> None:
        self.client = client
        self.include_failed = include_failed
        self.protect = protect
        self.track = track
        self.tracking = tracking

        self._lock = threading.RLock()
        self._worker: threading.Thread | None = None
        self._busy = False
        self._pushing: int | None = None  # the thread pushing to the widgets
        self._fleet: pd.DataFrame = _empty_frame(GRID_COLUMNS)
        self._grid: pd.DataFrame = _empty_frame(GRID_COLUMNS)
        self._tag_maps: list[dict[str, str]] = []
        self._listed: set[str] = set()
        self._shown_ids: list[str] = []
        self._selected: set[str] = set()
        self._plan: Plan | None = None
        self._run: Run | None = None
        self._results: pd.DataFrame | None = None
        self._merged: pd.DataFrame | None = None
        self._last_message = ("", 0)

        folder = Path(export_folder) if export_folder is not None else Path.cwd()
        self._build_widgets(folder)
        self._guarded("listing the fleet", self.refresh)()
        self._update_plan()

    # -- the widgets ---------------------------------------------------------

    def _build_widgets(self, folder: Path) -> None:
        self.banner = widgets.HTML(_banner_html(self.client))
        self.header = widgets.HTML(_header_html(self.client))
        self._build_find_and_pick()
        self._build_act()
        self._build_watch()
        self._build_result(folder)
        self._connect()

        self.widget = widgets.VBox(
            [
                self.banner,
                self.header,
                _heading("1. Find and pick"),
                widgets.HBox([self.refresh_button, self.fleet_info]),
                widgets.HBox(
                    [
                        self.status_filter,
                        widgets.VBox(
                            [
                                self.name_filter,
                                self.version_filter,
                                self.tag_filter,
                                widgets.HBox(
                                    [self.clear_filters_button, self.filter_info]
                                ),
                            ]
                        ),
                    ]
                ),
                widgets.HBox(
                    [
                        self.select_shown_button,
                        self.clear_selection_button,
                        self.selection_info,
                    ]
                ),
                self.table,
                _heading("2. Act"),
                widgets.HBox([self.action_picker, self.wave_size]),
                self.plan_area,
                self.confirm_row,
                widgets.HBox([self.run_button, self.cancel_button]),
                _heading("3. Watch"),
                widgets.HBox([self.progress, self.progress_label, self.elapsed_label]),
                self.messages,
                _heading("4. Result"),
                self.summary,
                self.results_table,
                widgets.HBox(
                    [
                        self.export_folder,
                        self.export_csv_button,
                        self.export_parquet_button,
                    ]
                ),
                self.export_info,
            ]
        )
        self.widget.add_class("dmsnb-panel")

    def _build_find_and_pick(self) -> None:
        self.refresh_button = widgets.Button(
            description="Refresh", icon="refresh", tooltip="list the fleet again"
        )
        self.fleet_info = widgets.HTML()
        self.status_filter = widgets.SelectMultiple(
            options=[],
            rows=6,
            description="Status",
            tooltip="ctrl-click or shift-click to pick several",
        )
        self.name_filter = widgets.Text(
            description="Name",
            placeholder="part of the name, or a pattern like kafka-*-prod",
            continuous_update=False,
            layout=widgets.Layout(width="420px"),
        )
        self.version_filter = widgets.Dropdown(
            options=[("any", "")], value="", description="Engine"
        )
        self.tag_filter = widgets.Text(
            description="Tags",
            placeholder="key=value, several separated by commas",
            continuous_update=False,
            layout=widgets.Layout(width="420px"),
        )
        self.clear_filters_button = widgets.Button(description="Clear filters")
        self.filter_info = widgets.HTML()
        self.select_shown_button = widgets.Button(
            description="Select all shown",
            tooltip="add every instance the filter shows to the selection",
            layout=widgets.Layout(width="auto"),
        )
        self.clear_selection_button = widgets.Button(
            description="Clear selection", layout=widgets.Layout(width="auto")
        )
        self.selection_info = widgets.HTML()
        self.table = ITable(self._grid, **_FLEET_TABLE_OPTIONS)

    def _build_act(self) -> None:
        self.action_picker = widgets.ToggleButtons(
            options=list(ACTIONS),
            value="restart",
            description="Action",
            style={"button_width": "auto"},
        )
        self.wave_size = widgets.BoundedIntText(
            value=1,
            min=1,
            max=10_000,
            description="Wave size",
            tooltip="instances per wave; a wave starts when the previous settled",
            layout=widgets.Layout(display="none", width="180px"),
        )
        self.plan_area = widgets.HTML()
        self.confirm_label = widgets.HTML()
        self.confirm_box = widgets.Text(placeholder="number of instances")
        self.confirm_row = widgets.HBox([self.confirm_label, self.confirm_box])
        self.run_button = widgets.Button(description="Run", disabled=True)
        self.cancel_button = widgets.Button(
            description="Cancel",
            disabled=True,
            tooltip="send no further call and stop following the instances",
        )

    def _build_watch(self) -> None:
        self.progress = widgets.IntProgress(value=0, min=0, max=1)
        self.progress_label = widgets.HTML()
        self.elapsed_label = widgets.HTML()
        self.messages = widgets.Output()

    def _build_result(self, folder: Path) -> None:
        self.summary = widgets.HTML("<i>No run yet.</i>")
        self.results_table = ITable(_results_grid(None), **_RESULT_TABLE_OPTIONS)
        self.results_table.layout.display = "none"
        self.export_folder = widgets.Text(
            value=str(folder),
            description="Folder",
            tooltip="where the export buttons write",
            layout=widgets.Layout(width="520px"),
        )
        self.export_csv_button = widgets.Button(description="Export CSV", disabled=True)
        self.export_parquet_button = widgets.Button(
            description="Export Parquet", disabled=True
        )
        self.export_info = widgets.HTML()

    def _connect(self) -> None:
        def on_click(button: Any, what: str, callback: Callable[..., None]) -> None:
            button.on_click(self._guarded(what, callback))

        def on_change(
            widget: Any, name: str, what: str, callback: Callable[..., None]
        ) -> None:
            widget.observe(self._guarded(what, callback), names=name)

        on_click(self.refresh_button, "listing the fleet", self._on_refresh)
        on_click(self.clear_filters_button, "clearing the filters", self._on_clear)
        on_click(self.select_shown_button, "selecting", self._on_select_shown)
        on_click(self.clear_selection_button, "clearing", self._on_clear_selection)
        on_click(self.run_button, "starting the run", self._on_run)
        on_click(self.cancel_button, "cancelling", self._on_cancel)
        on_click(self.export_csv_button, "exporting CSV", self._on_export_csv)
        on_click(
            self.export_parquet_button, "exporting Parquet", self._on_export_parquet
        )
        for widget in (
            self.status_filter,
            self.name_filter,
            self.version_filter,
            self.tag_filter,
        ):
            on_change(widget, "value", "filtering", self._on_filter)
        on_change(self.table, "selected_rows", "reading the selection", self._on_rows)
        on_change(self.action_picker, "value", "choosing the action", self._on_action)
        on_change(self.wave_size, "value", "reading the wave size", self._on_action)
        on_change(self.confirm_box, "value", "reading the typed count", self._on_typed)

    def __repr__(self) -> str:
        where = "SIMULATOR " if self.client.is_simulator else ""
        return (
            f"<dmsnb.Panel {where}project={self.client.project_id} "
            f"{len(self._fleet)} instance(s), {len(self._selected)} selected>"
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        # A front end with a live kernel draws the widget; one without (a
        # notebook viewer, an export, a front end without the widget
        # manager) falls back to the HTML summary or the text line.
        # TODO: JupyterLab and Notebook 7 never fall back: a saved output
        # whose widget state was not saved with the notebook reads "model not
        # found" until the cell runs again; only their "Save Widget State
        # Automatically" setting avoids it, and the README says so.
        bundle: dict[str, Any] = dict(self.widget._repr_mimebundle_(**kwargs))
        bundle["text/plain"] = repr(self)
        bundle["text/html"] = self._fallback_html()
        return bundle

    def _fallback_html(self) -> str:
        with self._lock:
            listed = len(self._fleet)
            selected = len(self._selected)
            results = self._results
        where = "on the SIMULATOR" if self.client.is_simulator else "on a REAL CLOUD"
        lines = [
            f"<b>dmsnb panel</b> {where}: {html.escape(_header_text(self.client))}",
            f"{listed} instance(s) listed, {selected} selected.",
        ]
        if results is not None:
            lines.append(
                "Last run: " + html.escape(str(results.attrs.get("summary", "")))
            )
        lines.append(
            "<i>This is a live widget and needs its kernel: run the cell again "
            "to get the panel back. Results are kept in the audit trail and in "
            "the files exported.</i>"
        )
        return "<div>" + "<br>".join(lines) + "</div>"

    # -- what the next cell reads ---------------------------------------------

    @property
    def fleet(self) -> pd.DataFrame:
        """The fleet as last listed (a copy), whatever the filter shows."""
        with self._lock:
            fleet: pd.DataFrame = self._fleet.copy()
        return fleet

    @property
    def shown_ids(self) -> list[str]:
        """The instance ids the filter shows, in the order of the table."""
        with self._lock:
            return list(self._shown_ids)

    @property
    def selected_ids(self) -> list[str]:
        """The selected instance ids, in the order of the fleet listing."""
        with self._lock:
            return [i for i in self._grid["instance_id"] if i in self._selected]

    @property
    def plan(self) -> Plan | None:
        """The plan shown for the current selection and action, if any."""
        return self._plan

    @property
    def plan_frame(self) -> pd.DataFrame | None:
        """The shown plan as a frame (a copy): one row per planned instance."""
        plan = self._plan
        return None if plan is None else plan.frame.copy()

    @property
    def results(self) -> pd.DataFrame | None:
        """The results of the last run, or ``None`` before the first run."""
        with self._lock:
            return None if self._results is None else self._results.copy()

    @property
    def merged(self) -> pd.DataFrame | None:
        """The fleet listed before the last run with its results merged in."""
        with self._lock:
            return None if self._merged is None else self._merged.copy()

    @property
    def last_run(self) -> Run | None:
        """The last :class:`dmsnb.Run` (partial results while it goes on)."""
        return self._run

    @property
    def running(self) -> bool:
        """True while a refresh or a run goes on."""
        return self._busy

    @property
    def message_lines(self) -> list[str]:
        """The text of the messages shown in the panel, oldest first."""
        return [
            str(output.get("data", {}).get("text/plain", output.get("text", "")))
            for output in self.messages.outputs
        ]

    # -- what code can do ------------------------------------------------------

    def refresh(self) -> None:
        """List the fleet again; keep the selection of every listed instance."""
        fleet = self.client.instances(include_failed=self.include_failed)
        self._show_fleet(fleet)

    def select(self, selection: Iterable[str] | pd.Series | pd.DataFrame) -> None:
        """Select instances by code, replacing the current selection.

        ``selection`` is a list of instance ids, a frame with an
        ``instance_id`` column (such as a filtered :attr:`fleet`), or a
        boolean Series over :attr:`fleet`. An empty list clears the
        selection. Instances the filter hides may be selected; the panel
        counts them. Raises ``ValueError`` when an id is malformed or not in
        the listed fleet; the selection is then left as it was.
        """
        ids = self._ids_of(selection)
        with self._lock:
            missing = [i for i in ids if i not in self._listed]
            if missing:
                raise ValueError(
                    f"not in the listed fleet: {_some(missing)}; click Refresh or "
                    "check the ids"
                )
            self._selected = set(ids)
        self._push_selection()
        self._selection_changed()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the work under way; True when nothing is running any more."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
        return not self._busy

    def export(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the merged frame of the last run to ``path``; return the path.

        The format follows the suffix: ``.csv`` or ``.parquet`` (Parquet
        needs pyarrow). Cells holding lists or dicts (``tags``,
        ``available_zones``) are written as JSON text. An existing file is
        kept unless ``overwrite=True``.
        """
        target = Path(path)
        writers = {".csv": _write_csv, ".parquet": _write_parquet}
        writer = writers.get(target.suffix.lower())
        if writer is None:
            raise ValueError(
                f"cannot export to {target.name!r}: the name must end in .csv or "
                ".parquet"
            )
        merged = self.merged
        if merged is None:
            raise ValueError("nothing to export yet: run an action first")
        if target.exists() and not overwrite:
            raise ValueError(
                f"{target} exists already; choose another name or pass overwrite=True"
            )
        writer(_exportable(merged), target)
        return target

    # -- fleet, filter and selection -------------------------------------------

    def _on_refresh(self, _button: object = None) -> None:
        self._start_worker("listing the fleet", self._run_refresh)

    def _run_refresh(self) -> None:
        self.progress_label.value = "listing the fleet"
        try:
            self.refresh()
        finally:
            self.progress_label.value = ""

    def _show_fleet(self, fleet: pd.DataFrame) -> None:
        grid = _grid_frame(fleet)
        ids = [str(value) for value in grid["instance_id"]]
        with self._lock:
            listed = set(ids)
            vanished = sorted(i for i in self._selected if i not in listed)
            self._fleet = fleet.copy()
            self._grid = grid
            self._tag_maps = [_tag_map(tags) for tags in fleet.get("tags", [])]
            if len(self._tag_maps) != len(ids):
                self._tag_maps = [{} for _ in ids]
            self._listed = listed
            self._selected &= listed
        self._update_filter_choices(grid)

        listed_at = datetime.now(timezone.utc).strftime("%H:%M:%S UTC")
        failed = int((grid["status"] == "CREATEFAILED").sum())
        self.fleet_info.value = html.escape(
            f"{len(grid)} instance(s) listed at {listed_at}; "
            f"{failed} whose creation failed"
        )
        self._guarded("filtering", self._apply_filter)()
        if vanished:
            self._say(
                "warning",
                f"{len(vanished)} selected instance(s) are no longer listed and "
                f"were dropped from the selection: {_some(vanished, 20)}",
            )
        self._selection_changed()

    def _update_filter_choices(self, grid: pd.DataFrame) -> None:
        """Offer the statuses and versions listed, keeping what was chosen."""
        counts = grid["status"].value_counts()
        chosen = tuple(self.status_filter.value)
        statuses = sorted(set(counts.index) | set(chosen))
        versions = sorted(set(grid["engine_version"]) - {""})
        version = str(self.version_filter.value)

        with self._own_push():
            self.status_filter.options = [
                (f"{status} ({int(counts.get(status, 0))})", status)
                for status in statuses
            ]
            self.status_filter.value = chosen
            missing = (
                [(f"{version} (none listed)", version)]
                if (version and version not in versions)
                else []
            )
            self.version_filter.options = [
                ("any", ""),
                *((v, v) for v in versions),
                *missing,
            ]
            self.version_filter.value = version

    @contextlib.contextmanager
    def _own_push(self) -> Iterator[None]:
        """Mark the trait changes made meanwhile in this thread as the panel's."""
        before = self._pushing
        self._pushing = threading.get_ident()
        try:
            yield
        finally:
            self._pushing = before

    def _echo(self) -> bool:
        """Whether a trait change comes from the panel's own push, not a user."""
        return self._pushing == threading.get_ident()

    def _on_filter(self, _change: Mapping[str, Any]) -> None:
        if self._echo():
            return
        self._apply_filter()

    def _on_clear(self, _button: object = None) -> None:
        with self._own_push():
            self.status_filter.value = ()
            self.name_filter.value = ""
            self.version_filter.value = ""
            self.tag_filter.value = ""
        self._apply_filter()

    def _apply_filter(self) -> None:
        """Show the rows the filters let through; the selection stays.

        A tag filter that cannot be read is left out (and then raised), so
        that the table always shows what the other filters let through.
        """
        problem: ValueError | None = None
        try:
            tags = parse_tag_filter(str(self.tag_filter.value))
        except ValueError as error:
            tags, problem = (), error
        wanted = FleetFilter(
            statuses=tuple(str(s) for s in self.status_filter.value),
            name=str(self.name_filter.value).strip(),
            engine_version=str(self.version_filter.value),
            tags=tags,
        )
        with self._lock:
            grid = self._grid
            mask = filter_mask(grid, self._tag_maps, wanted)
            shown = grid[mask].reset_index(drop=True)
            self._shown_ids = [str(i) for i in shown["instance_id"]]
        self._push_selection(shown)

        if wanted.active:
            self.filter_info.value = html.escape(
                f"showing {len(shown)} of {len(grid)} ({wanted.describe()})"
            )
        else:
            self.filter_info.value = html.escape(f"showing all {len(grid)}")
        if problem is not None:
            self.filter_info.value += " <b>(tag filter left out)</b>"
        self.select_shown_button.description = f"Select all shown ({len(shown)})"
        self._update_selection_info()
        if problem is not None:
            raise problem

    def _push_selection(self, shown: pd.DataFrame | None = None) -> None:
        """Tick the selected rows the table shows (and give it new rows)."""
        with self._lock:
            positions = [
                n for n, i in enumerate(self._shown_ids) if i in self._selected
            ]
        with self._own_push(), self.table.hold_sync():
            if shown is None:
                self.table.selected_rows = positions
            else:
                # update() does not keep the options the table was made with
                # (it would downsample again): give them every time.
                self.table.update(
                    shown, selected_rows=positions, **_FLEET_TABLE_OPTIONS
                )

    def _on_rows(self, change: Mapping[str, Any]) -> None:
        if self._echo():
            return
        positions = change["new"]
        with self._lock:
            shown = self._shown_ids
            clicked = {shown[p] for p in positions if 0 <= p < len(shown)}
            hidden = self._selected - set(shown)
            self._selected = hidden | clicked
        self._selection_changed()

    def _on_select_shown(self, _button: object = None) -> None:
        with self._lock:
            self._selected |= set(self._shown_ids)
        self._push_selection()
        self._selection_changed()

    def _on_clear_selection(self, _button: object = None) -> None:
        with self._lock:
            self._selected = set()
        self._push_selection()
        self._selection_changed()

    def _ids_of(self, selection: Iterable[str] | pd.Series | pd.DataFrame) -> list[str]:
        if isinstance(selection, pd.Series) and pd.api.types.is_bool_dtype(selection):
            fleet = self.fleet
            if not selection.index.equals(fleet.index):
                raise ValueError(
                    "a boolean selection must be a mask over panel.fleet "
                    "(same rows, same index)"
                )
            selection = fleet.loc[selection.to_numpy(dtype=bool), "instance_id"]
        if isinstance(selection, pd.DataFrame | pd.Series):
            if len(selection) == 0:
                return []
        elif not isinstance(selection, str | bytes):
            selection = list(selection)
            if not selection:
                return []
        return checked_instance_ids(selection)

    def _selection_changed(self) -> None:
        # A count typed for another selection must not confirm this one.
        self.confirm_box.value = ""
        self._update_selection_info()
        self._update_plan()

    def _update_selection_info(self) -> None:
        with self._lock:
            selected = len(self._selected)
            hidden = len(self._selected - set(self._shown_ids))
        text = f"{selected} selected"
        if hidden:
            text += f", {hidden} of them hidden by the filter"
        self.selection_info.value = f"<b>{html.escape(text)}</b>"

    # -- plan and confirmation -------------------------------------------------

    @property
    def _action(self) -> str:
        return str(self.action_picker.value)

    def _on_action(self, _change: Mapping[str, Any]) -> None:
        rolling = self._action == "rolling_restart"
        self.wave_size.layout.display = "" if rolling else "none"
        self.confirm_box.value = ""
        self._update_plan()

    def _on_typed(self, _change: Mapping[str, Any]) -> None:
        self._update_buttons()

    def _make_plan(self) -> Plan | None:
        action = self._action
        with self._lock:
            fleet = self._fleet
            ids = [i for i in self._grid["instance_id"] if i in self._selected]
        fleet = self._plan_columns(fleet)
        if action == "delete_failed":
            failed = fleet[fleet["status"] == "CREATEFAILED"]
            return self.client.plan("delete_failed", fleet=failed, protect=self.protect)
        if not ids:
            return None
        # The plan reads only the selected rows: quick for a large fleet.
        rows = fleet[fleet["instance_id"].isin(ids)]
        plan_action = "restart" if action == "rolling_restart" else action
        return self.client.plan(plan_action, ids, fleet=rows, protect=self.protect)

    def _plan_columns(self, fleet: pd.DataFrame) -> pd.DataFrame:
        """The columns a plan reads; all of them when a rule has a predicate."""
        rules = [self.protect] if isinstance(self.protect, Protection) else self.protect
        if any(rule.predicate is not None for rule in rules):
            return fleet
        wanted = [c for c in ("instance_id", "name", "status", "tags") if c in fleet]
        narrow: pd.DataFrame = fleet[wanted]
        return narrow

    def _update_plan(self) -> None:
        self._plan = None
        try:
            self._plan = self._make_plan()
        finally:
            plan = self._plan
            self.plan_area.value = _plan_html(
                plan, self._action, self._wave_size(), self.include_failed
            )
            count = plan.count if plan is not None else 0
            deleting = self._action in DELETING
            self.confirm_row.layout.display = "flex" if deleting else "none"
            self.confirm_label.value = html.escape(
                f"type the number of instances to delete: {count}"
            )
            self._update_buttons()

    def _wave_size(self) -> int | None:
        if self._action != "rolling_restart":
            return None
        return max(1, int(self.wave_size.value))

    def _update_buttons(self) -> None:
        plan = self._plan
        count = plan.count if plan is not None else 0
        action = self._action
        busy = self._busy
        ready = count > 0 and not busy
        if action in DELETING:
            ready = ready and self._typed_count_matches(count)
        label = _ACTION_LABELS[action]
        self.run_button.disabled = not ready
        self.run_button.description = f"Run: {label} {count}" if count else "Run"
        self.run_button.button_style = "danger" if action in DELETING else "primary"
        self.run_button.layout.width = "auto"
        self.cancel_button.disabled = not (busy and self._run is not None)
        self.refresh_button.disabled = busy
        with self._lock:
            has_results = self._merged is not None
        self.export_csv_button.disabled = not has_results
        self.export_parquet_button.disabled = not has_results

    def _typed_count_matches(self, count: int) -> bool:
        return str(self.confirm_box.value).strip() == str(count)

    # -- running ---------------------------------------------------------------

    def _on_run(self, _button: object = None) -> None:
        self._check_idle()
        action = self._action
        plan = self._make_plan()
        if plan is None:
            raise ValueError("no instances selected; nothing to do")
        if plan.count == 0:
            raise ValueError(f"the plan has nothing to do ({plan.summary()})")
        confirm = None
        if action in DELETING:
            if not self._typed_count_matches(plan.count):
                raise ValueError(
                    f"deleting {plan.count} instance(s) needs the number "
                    f"{plan.count} typed in the box"
                )
            confirm = plan.count

        run = self.client.run(plan, confirm=confirm, **self._run_options())
        with self._lock:
            fleet = self._fleet
        self._run = run
        self._before_work(len(plan.frame))
        self._start_worker("the run", self._execute, run, fleet)

    def _on_cancel(self, _button: object = None) -> None:
        run = self._run
        if run is None or not self._busy:
            raise ValueError("nothing is running to cancel")
        run.cancel()
        self._say(
            "warning",
            "cancel asked: no further call is sent and tracking stops; calls "
            "under way finish",
        )

    def _run_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "track": self.track,
            "on_progress": _Throttled(self._progressed),
            "wave_size": self._wave_size(),
        }
        if self.tracking is not None:
            options["tracking"] = self.tracking
        return options

    def _check_idle(self) -> None:
        if self._busy:
            raise ValueError("other work is under way; wait for it to finish")

    def _before_work(self, count: int) -> None:
        self._clear_messages()
        self.summary.value = "<i>running ...</i>"
        self.results_table.layout.display = "none"
        self.progress.max = max(count, 1)
        self.progress.value = 0
        self.progress.bar_style = ""
        self.progress_label.value = "starting"
        self.elapsed_label.value = ""

    def _start_worker(self, what: str, work: Callable[..., None], *args: Any) -> None:
        self._check_idle()

        def body() -> None:
            try:
                with self._log_to_panel():
                    work(*args)
            except Exception as error:
                self._report(what, error)
            finally:
                self._busy = False
                self._update_buttons()

        worker = threading.Thread(target=body, name="dmsnb-panel", daemon=True)
        self._worker = worker
        self._busy = True
        self._update_buttons()
        worker.start()

    @contextlib.contextmanager
    def _log_to_panel(self) -> Iterator[None]:
        """Show the warnings dmsnb logs meanwhile in the panel too."""
        handler = _PanelLogHandler(self)
        package = logging.getLogger("dmsnb")
        package.addHandler(handler)
        try:
            yield
        finally:
            package.removeHandler(handler)

    def _progressed(self, run: Run, *, rows: bool) -> None:
        # Called by the run (throttled) after calls and rounds of reads.
        self._run = run
        counts = run.counts()
        total = len(run.plan.frame)
        self.progress.max = max(total, 1)
        self.progress.value = total - counts["pending"]
        self.progress_label.value = _counts_html(counts)
        self.elapsed_label.value = _elapsed_text(run.elapsed)
        if rows:
            self._show_rows(run)
        self._update_buttons()

    def _show_rows(self, run: Run) -> None:
        """The results table as it is now; settled rows carry their result."""
        with self._lock:
            fleet = self._fleet
        planned = fleet[fleet["instance_id"].isin(run.plan.frame["instance_id"])]
        merged = merge_results(planned, run.results)
        self.results_table.update(_results_grid(merged), **_RESULT_TABLE_OPTIONS)
        self.results_table.layout.display = ""

    def _execute(self, run: Run, fleet: pd.DataFrame) -> None:
        clock = threading.Thread(
            target=self._tick, args=(run,), name="dmsnb-panel-clock", daemon=True
        )
        clock.start()
        try:
            run.execute()
        finally:
            self._finish(run, fleet)
            self._refresh_after_run()

    def _tick(self, run: Run) -> None:
        while not run.finished.wait(1.0):
            self.elapsed_label.value = _elapsed_text(run.elapsed)

    def _refresh_after_run(self) -> None:
        try:
            self.refresh()
        except Exception as error:
            self._report("listing the fleet after the run", error)

    def _finish(self, run: Run, fleet: pd.DataFrame) -> None:
        results = run.results
        merged = merge_results(fleet, results)
        summary = _run_summary(run, results)
        results.attrs["summary"] = summary
        with self._lock:
            self._results = results
            self._merged = merged

        self.summary.value = (
            f"<b>{html.escape(summary)}</b><br>"
            "<small>panel.merged, panel.results and panel.plan_frame hold the "
            "frames; the export buttons write panel.merged.</small>"
        )
        self.progress.value = self.progress.max
        self.progress.bar_style = _bar_style(results)
        self.progress_label.value = _counts_html(run.counts())
        self.elapsed_label.value = _elapsed_text(run.elapsed)
        self.results_table.update(_results_grid(merged), **_RESULT_TABLE_OPTIONS)
        self.results_table.layout.display = ""

        for line in _problem_lines(results):
            self._say("warning", line)
        if self._action in DELETING:
            self.confirm_box.value = ""
        self._update_buttons()

    # -- export ------------------------------------------------------------------

    def _on_export_csv(self, _button: object = None) -> None:
        self._export_to_folder(".csv")

    def _on_export_parquet(self, _button: object = None) -> None:
        self._export_to_folder(".parquet")

    def _export_to_folder(self, suffix: str) -> None:
        folder = Path(str(self.export_folder.value).strip() or ".").expanduser()
        if not folder.is_dir():
            raise ValueError(f"no such folder: {folder}; type an existing folder")
        results = self.results
        action = "run"
        if results is not None and len(results):
            action = str(results["action"].iloc[0])
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        target = folder / f"dmsnb-{action}-{stamp}{suffix}"
        number = 2
        while target.exists():
            target = folder / f"dmsnb-{action}-{stamp}-{number}{suffix}"
            number += 1
        written = self.export(target)
        self.export_info.value = (
            f"wrote <code>{html.escape(str(written.resolve()))}</code>"
        )
        self._say("info", f"wrote {written.resolve()}")

    # -- messages --------------------------------------------------------------

    def _guarded(self, what: str, callback: Callable[..., None]) -> Callable[..., None]:
        def guarded(*args: Any) -> None:
            try:
                callback(*args)
            except Exception as error:
                self._report(what, error)

        return guarded

    def _report(self, what: str, error: Exception) -> None:
        if isinstance(error, DMSError | ValueError | OSError | ImportError):
            self._say("error", f"{what} failed: {error} ({hint_for(error)})")
            return
        logger.exception("the panel failed while %s", what)
        self._say(
            "error",
            f"{what} failed unexpectedly: {type(error).__name__}: {error} "
            f"({hint_for(error)})",
        )

    def _say(self, level: str, text: str) -> None:
        colour = {"error": "#cf222e", "warning": "#9a6700"}.get(level, "inherit")
        with self._lock:
            kept = tuple(self.messages.outputs)
            last, times = self._last_message
            if kept and last == f"{level}: {text}":
                times += 1
                kept = kept[:-1]
                shown = f"{text} ({times} times)"
            else:
                times = 1
                shown = text
            self._last_message = (f"{level}: {text}", times)
            entry = {
                "output_type": "display_data",
                "data": {
                    "text/plain": f"{level}: {shown}",
                    "text/html": (
                        f'<div style="color:{colour}"><b>{level}:</b> '
                        f"{html.escape(shown)}</div>"
                    ),
                },
                "metadata": {},
            }
            self.messages.outputs = (*kept[-(MESSAGES_KEPT - 1) :], entry)

    def _clear_messages(self) -> None:
        with self._lock:
            self.messages.outputs = ()
            self._last_message = ("", 0)


class _Throttled:
    """An ``on_progress`` callback that passes on at most every so often.

    The bar and counts follow every ``PROGRESS_EVERY`` seconds, the rows of
    the results table every ``ROWS_EVERY``; the end of the run is drawn by
    the panel itself. A failure is shown in the panel, not only logged.
    """

    def __init__(self, callback: Callable[..., None]) -> None:
        self._callback = callback
        self._last = 0.0
        self._last_rows = 0.0

    def __call__(self, run: Run) -> None:
        now = time.monotonic()
        if now - self._last < PROGRESS_EVERY:
            return
        rows = now - self._last_rows >= ROWS_EVERY
        self._last = now
        if rows:
            self._last_rows = now
        self._callback(run, rows=rows)


class _PanelLogHandler(logging.Handler):
    """Shows warnings of the ``dmsnb`` logger in a panel's message area."""

    def __init__(self, panel: Panel) -> None:
        super().__init__(logging.WARNING)
        self._panel = panel

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == __name__:  # the panel reports its own errors
            return
        try:
            text = record.getMessage()
        except Exception:  # a malformed log call must not break the run
            text = str(record.msg)
        level = "error" if record.levelno >= logging.ERROR else "warning"
        self._panel._say(level, text)


def hint_for(error: BaseException) -> str:
    """What the user can do about ``error``, in a few words."""
    if isinstance(error, PlanError):
        return "click Refresh, read the new plan, then run again"
    if isinstance(error, AuthError):
        return "check the AK/SK pair or the token, and the project id"
    if isinstance(error, NotFoundError):
        return "the instance is gone; click Refresh"
    if isinstance(error, ActionOutcomeUnknown):
        return (
            "the service may have acted; click Refresh and read the statuses "
            "before trying again"
        )
    if isinstance(error, TransportError):
        return (
            "check the endpoint and the network (a simulator must still be "
            "running), then click Refresh"
        )
    if isinstance(error, ConfigError):
        return "fix the client's settings, then make a new panel"
    if isinstance(error, APIError):
        return "see the error code; click Refresh, then try again"
    if isinstance(error, ImportError):
        return "install the missing package named above, then click again"
    if isinstance(error, OSError):
        return "check that the folder exists and is writable, then click again"
    if isinstance(error, ValueError):
        return "nothing was sent; correct it and try again"
    return "this is a dmsnb bug: please report it; the traceback is logged"


# -- tables as the panel shows them ---------------------------------------------


def _heading(text: str) -> widgets.HTML:
    return widgets.HTML(
        f'<div style="margin-top:8px;font-weight:bold;font-size:110%;'
        f'border-bottom:1px solid #d0d7de">{html.escape(text)}</div>'
    )


def _empty_frame(columns: Iterable[str]) -> pd.DataFrame:
    frame: pd.DataFrame = pd.DataFrame(
        {name: pd.Series([], dtype="object") for name in columns}
    )
    return frame


def _some(ids: Sequence[str], shown: int = 5) -> str:
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(ids[:shown]) + more


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value)


def _time_text(value: object) -> str:
    if isinstance(value, pd.Timestamp) and not pd.isna(value):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return _text(value)


def _tag_map(tags: object) -> dict[str, str]:
    if not isinstance(tags, list):
        return {}
    return {
        str(tag.get("key", "")): str(tag.get("value", ""))
        for tag in tags
        if isinstance(tag, Mapping)
    }


def _tags_text(value: object) -> str:
    if not isinstance(value, list):
        return _text(value)
    pairs = []
    for tag in value:
        if isinstance(tag, Mapping):
            pairs.append(f"{tag.get('key', '')}={tag.get('value', '')}")
        else:
            pairs.append(str(tag))
    return ", ".join(pairs)


def _grid_frame(fleet: pd.DataFrame) -> pd.DataFrame:
    """The fleet table's frame: the useful columns, every cell as plain text."""
    columns: dict[str, list[str]] = {}
    for name in GRID_COLUMNS:
        values = fleet[name] if name in fleet.columns else [None] * len(fleet)
        if name == "created_at":
            columns[name] = [_time_text(value) for value in values]
        elif name == "tags":
            columns[name] = [_tags_text(value) for value in values]
        else:
            columns[name] = [_text(value) for value in values]
    grid: pd.DataFrame = pd.DataFrame(columns, dtype="object")
    return grid


def _results_grid(merged: pd.DataFrame | None) -> pd.DataFrame:
    """The planned rows of ``merged``, escaped, with statuses and results coloured.

    A row still pending shows ``pending`` as its result.
    """
    if merged is None or "result" not in merged.columns:
        return _empty_frame(RESULT_GRID_COLUMNS)
    planned = merged[merged["action"].notna()] if "action" in merged else merged
    columns: dict[str, list[str]] = {}
    for name in RESULT_GRID_COLUMNS:
        values = planned[name] if name in planned.columns else [None] * len(planned)
        if name == "requested_at":
            cells = [html.escape(_time_text(value)) for value in values]
        else:
            cells = [html.escape(_text(value)) for value in values]
        if name == "result":
            cells = [_coloured(cell or "pending", RESULT_COLOURS) for cell in cells]
        elif name in ("status_before", "status_after"):
            cells = [_coloured_status(cell) for cell in cells]
        columns[name] = cells
    grid: pd.DataFrame = pd.DataFrame(columns, dtype="object")
    return grid


def _coloured(text: str, colours: Mapping[str, str]) -> str:
    return _painted(text, colours.get(text, "inherit"))


def _painted(text: str, colour: str) -> str:
    return f'<b style="color:{colour}">{text}</b>'


def _coloured_status(status: str) -> str:
    if not status:
        return ""
    colour = STATUS_COLOURS.get(status, TRANSITIONAL_COLOUR)
    return f'<span style="color:{colour}">{status}</span>'


def _plan_html(
    plan: Plan | None, action: str, wave_size: int | None, include_failed: bool
) -> str:
    if action == "delete_failed" and not include_failed:
        return (
            "<i>This panel lists the fleet without failed creations "
            "(include_failed=False); make it with include_failed=True to "
            "delete them.</i>"
        )
    if plan is None:
        return (
            "<i>Nothing selected: click rows in the table (shift-click for a "
            "range), click Select all shown, or call panel.select(ids).</i>"
        )

    frame = plan.frame
    lines = [f"<b>Plan: {html.escape(plan.summary())}</b>"]
    if action == "delete_failed":
        lines.append(
            "Every instance whose creation failed, as listed; the selection "
            "is not used."
        )
    if wave_size is not None and plan.count:
        waves = math.ceil(plan.count / wave_size)
        lines.append(
            f"Rolling: {waves} wave(s) of up to {wave_size}; a wave starts only "
            "after the previous one settled, and a failure stops the next waves."
        )
    skipped = frame["reason"].dropna().value_counts()
    if len(skipped):
        why = "; ".join(
            f"{n} &times; {html.escape(str(r))}" for r, n in skipped.items()
        )
        lines.append(f"Skipped: {why}")
    if action in DELETING:
        lines.append(
            '<div style="color:#cf222e">Deleting destroys the instances\' data '
            "with no backup.</div>"
        )
    lines.append(_plan_table(frame))
    if len(frame) > PLAN_ROWS_SHOWN:
        lines.append(
            f"<i>... and {len(frame) - PLAN_ROWS_SHOWN} more rows: "
            "panel.plan_frame has every row</i>"
        )
    return "\n".join(lines)


def _plan_table(frame: pd.DataFrame) -> str:
    headings = ("instance_id", "name", "status", "will be", "reason")
    cell = "padding:1px 10px 1px 0;text-align:left;white-space:nowrap"
    head = "".join(f'<th style="{cell}">{name}</th>' for name in headings)
    body = []
    for record in frame.head(PLAN_ROWS_SHOWN).to_dict("records"):
        verdict = (
            _painted("acted on", RESULT_COLOURS["success"])
            if record["allowed"]
            else _coloured("skipped", RESULT_COLOURS)
        )
        cells = [
            html.escape(_text(record["instance_id"])),
            html.escape(_text(record["name"])),
            _coloured_status(html.escape(_text(record["status"]))),
            verdict,
            html.escape(_text(record["reason"])),
        ]
        body.append(
            "<tr>" + "".join(f'<td style="{cell}">{c}</td>' for c in cells) + "</tr>"
        )
    return (
        '<div style="max-height:260px;overflow:auto">'
        '<table class="dmsnb-plan" style="border-collapse:collapse;font-size:90%">'
        f"<tr>{head}</tr>{''.join(body)}</table></div>"
    )


def _counts_html(counts: Mapping[str, int]) -> str:
    settled = counts["success"] + counts["failed"] + counts["unknown"]
    outcomes = ", ".join(
        _painted(f"{name} {counts[name]}", RESULT_COLOURS[name])
        for name in ("success", "failed", "unknown")
    )
    return " &middot; ".join(
        [
            f"pending {counts['pending']}",
            f"settled {settled} ({outcomes})",
            f"skipped {counts['skipped']}",
        ]
    )


def _elapsed_text(seconds: float) -> str:
    whole = math.floor(seconds)
    minutes, rest = divmod(whole, 60)
    shown = f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"
    return f"&middot; {shown} elapsed"


def _run_summary(run: Run, results: pd.DataFrame) -> str:
    summary = str(results.attrs.get("summary", run.summary()))
    if run.plan.use_all_failure and not run.dry_run:
        summary += (
            "; the service answered the all-failure call without naming "
            f"instances: dmsnb followed the {run.plan.count} it had listed"
        )
    if run.cancelled:
        acted = int(results["requested_at"].notna().sum())
        never = len(results) - acted
        summary += (
            f"; cancelled: {acted} instance(s) were requested before the cancel "
            f"(their rows say what became of them), {never} never were"
        )
    return summary


def _banner_html(client: Client) -> str:
    if client.is_simulator:
        return (
            '<div style="background:#fff8c5;border:2px solid #9a6700;'
            'padding:6px 10px;font-weight:bold">'
            "SIMULATOR &mdash; nothing here touches a real cloud</div>"
        )
    return (
        '<div style="background:#ffebe9;border:2px solid #cf222e;'
        'padding:6px 10px;font-weight:bold">'
        "REAL CLOUD &mdash; Run restarts or deletes real instances</div>"
    )


def _header_text(client: Client) -> str:
    # Only what the client's repr shows; never a key or a token.
    return (
        f"endpoint {client.endpoint} · project {client.project_id} · "
        f"auth {client.credentials.kind} · API {client.api_version}"
    )


def _header_html(client: Client) -> str:
    return f"<code>{html.escape(_header_text(client))}</code>"


def _bar_style(results: pd.DataFrame) -> str:
    outcomes = set(results["result"].dropna().astype(str))
    if not outcomes or outcomes == {"skipped"}:
        return "info"
    if outcomes <= {"success", "skipped"}:
        return "success"
    if "success" in outcomes:
        return "warning"
    return "danger"


def _problem_lines(results: pd.DataFrame) -> list[str]:
    """One line per kind of trouble: how many, and the first reason given."""
    lines = []
    for outcome in ("failed", "unknown", "skipped"):
        rows = results[results["result"] == outcome]
        if rows.empty:
            continue
        reasons = rows["reason"].dropna().astype(str).unique()
        reason = reasons[0] if len(reasons) else "no reason given"
        others = (
            f" (and {len(reasons) - 1} other reason(s))" if len(reasons) > 1 else ""
        )
        lines.append(f"{len(rows)} instance(s) {outcome}: {reason}{others}")
    return lines


# -- export ------------------------------------------------------------------------


def _exportable(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose list and dict cells are JSON text, so any format takes it."""
    copy: pd.DataFrame = frame.copy()
    for column in copy.columns:
        if copy[column].dtype != object:
            continue
        values = copy[column]
        if values.map(lambda v: isinstance(v, list | dict | tuple)).any():
            copy[column] = values.map(
                lambda v: (
                    json.dumps(v, default=str)
                    if isinstance(v, list | dict | tuple)
                    else v
                )
            )
    return copy


def _write_csv(frame: pd.DataFrame, target: Path) -> None:
    frame.to_csv(target, index=False)


def _write_parquet(frame: pd.DataFrame, target: Path) -> None:
    if importlib.util.find_spec("pyarrow") is None:
        raise ImportError(
            "Parquet export needs pyarrow: pip install pyarrow (or export CSV)"
        )
    frame.to_parquet(target, index=False)
