"""``Panel``: pick instances in a table, read the plan, act, and see the results.

The panel is one composite widget over the calls a notebook cell makes:
:meth:`Client.instances` for the table, :meth:`Client.plan` for the plan
area, :meth:`Client.run` for the Run button and :meth:`Client.delete_failed`.
It decides nothing of its own: what may be touched, and why not, is the
plan's; the panel only asks twice before anything is deleted.

The fleet table is itables' ``ITable`` widget. Its ``selected_rows`` trait
holds positions into the frame the widget was given; the panel turns them
into instance ids at once and keeps the selection as ids, so a refresh that
reorders, adds or drops instances keeps every selected instance that is
still listed (and says which ones vanished). The whole frame is sent to the
browser, never downsampled, so that every row can be selected.

Long work (a refresh, a run, the deletion of failed creations) runs in one
daemon thread at a time; :meth:`Panel.wait` joins it. Every callback is
guarded: an error is shown in the panel's message area with what to do
next, never lost.
"""

from __future__ import annotations

import html
import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
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
from ._plan import Plan
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
    "duration_s",
    "error_code",
    "request_id",
)
"""The columns of the results table (the acted-on rows of the merged frame)."""

RESULT_COLOURS: dict[str, str] = {
    "success": "#1a7f37",
    "failed": "#cf222e",
    "unknown": "#9a6700",
    "skipped": "#57606a",
}

PLAN_ROWS_SHOWN = 20
MESSAGES_KEPT = 10

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
    # Names and tags come from the service: itables escapes them.
    "allow_html": False,
}
_RESULT_TABLE_OPTIONS: dict[str, Any] = {
    **_TABLE_OPTIONS,
    # The panel escapes every cell itself before it colours the result.
    "allow_html": True,
}


class Panel:
    """A widget to restart or delete selected instances of ``client``'s project.

    Show it as the last expression of a cell. Rows are picked by clicking
    them in the table or by code with :meth:`select`; the plan shows what
    Run will do and what it skips; deleting also needs the number of
    instances typed in. After a run, :attr:`results` and :attr:`merged`
    hold the frames for the next cell.

    ``include_failed`` lists the instances whose creation failed too;
    ``track`` and ``tracking`` are passed to every run (see
    :class:`dmsnb.Tracking`).
    """

    def __init__(
        self,
        client: Client,
        *,
        include_failed: bool = True,
        track: bool = True,
        tracking: Tracking | None = None,
    ) -> None:
        self.client = client
        self.include_failed = include_failed
        self.track = track
        self.tracking = tracking

        self._lock = threading.RLock()
        self._worker: threading.Thread | None = None
        self._busy = False
        self._fleet: pd.DataFrame = _empty_frame(GRID_COLUMNS)
        self._grid_ids: list[str] = []
        self._positions: dict[str, int] = {}
        self._selected: set[str] = set()
        self._plan: Plan | None = None
        self._run: Run | None = None
        self._results: pd.DataFrame | None = None
        self._merged: pd.DataFrame | None = None

        self._build_widgets()
        self._guarded("listing the fleet", self.refresh)()
        self._update_plan()

    # -- the widgets ---------------------------------------------------------

    def _build_widgets(self) -> None:
        self.banner = widgets.HTML(_banner_html(self.client))
        self.header = widgets.HTML(_header_html(self.client))

        self.refresh_button = widgets.Button(
            description="Refresh", icon="refresh", tooltip="list the fleet again"
        )
        self.fleet_info = widgets.HTML()
        self.table = ITable(_grid_frame(self._fleet), **_FLEET_TABLE_OPTIONS)

        self.action_picker = widgets.ToggleButtons(
            options=[("restart", "restart"), ("delete", "delete")],
            value="restart",
            description="Action",
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
        self.progress = widgets.IntProgress(value=0, min=0, max=1)
        self.progress_label = widgets.HTML()
        self.messages = widgets.Output()
        self.summary = widgets.HTML()
        self.results_table = ITable(_results_grid(None), **_RESULT_TABLE_OPTIONS)
        self.results_table.layout.display = "none"

        self.delete_failed_confirm = widgets.Checkbox(
            value=False,
            description="yes, delete every instance whose creation failed",
            indent=False,
            layout=widgets.Layout(width="auto"),
        )
        self.delete_failed_button = widgets.Button(
            description="Delete failed creations",
            disabled=True,
            layout=widgets.Layout(width="auto"),
        )

        self._connect()
        self.widget = widgets.VBox(
            [
                self.banner,
                self.header,
                widgets.HBox([self.refresh_button, self.fleet_info]),
                self.table,
                self.action_picker,
                self.plan_area,
                self.confirm_row,
                widgets.HBox(
                    [
                        self.run_button,
                        self.cancel_button,
                        self.progress,
                        self.progress_label,
                    ]
                ),
                self.messages,
                self.summary,
                self.results_table,
                widgets.HTML("<b>Instances whose creation failed</b>"),
                widgets.HBox([self.delete_failed_confirm, self.delete_failed_button]),
            ]
        )

    def _connect(self) -> None:
        def on_click(button: Any, what: str, callback: Callable[..., None]) -> None:
            button.on_click(self._guarded(what, callback))

        def on_change(
            widget: Any, name: str, what: str, callback: Callable[..., None]
        ) -> None:
            widget.observe(self._guarded(what, callback), names=name)

        on_click(self.refresh_button, "listing the fleet", self._on_refresh)
        on_click(self.run_button, "starting the run", self._on_run)
        on_click(self.cancel_button, "cancelling", self._on_cancel)
        on_click(
            self.delete_failed_button,
            "deleting failed creations",
            self._on_delete_failed,
        )
        on_change(self.table, "selected_rows", "reading the selection", self._on_rows)
        on_change(self.action_picker, "value", "choosing the action", self._on_action)
        on_change(self.confirm_box, "value", "reading the typed count", self._on_typed)
        on_change(
            self.delete_failed_confirm, "value", "reading the tick", self._on_typed
        )

    def __repr__(self) -> str:
        where = "SIMULATOR " if self.client.is_simulator else ""
        return (
            f"<dmsnb.Panel {where}project={self.client.project_id} "
            f"{len(self._fleet)} instance(s), {len(self._selected)} selected>"
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = dict(self.widget._repr_mimebundle_(**kwargs))
        bundle["text/plain"] = repr(self)
        return bundle

    # -- what the next cell reads ---------------------------------------------

    @property
    def fleet(self) -> pd.DataFrame:
        """The fleet as last listed (a copy)."""
        with self._lock:
            fleet: pd.DataFrame = self._fleet.copy()
        return fleet

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
    def plan(self) -> Plan | None:
        """The plan shown for the current selection and action, if any."""
        return self._plan

    @property
    def last_run(self) -> Run | None:
        """The last :class:`dmsnb.Run` (partial results while it goes on)."""
        return self._run

    @property
    def selected_ids(self) -> list[str]:
        """The selected instance ids, in the order of the fleet table."""
        with self._lock:
            return [i for i in self._grid_ids if i in self._selected]

    @property
    def running(self) -> bool:
        """True while a refresh, a run or a deletion of failed creations goes on."""
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
        """List the fleet again and keep the selection of every listed instance."""
        fleet = self.client.instances(include_failed=self.include_failed)
        self._show_fleet(fleet)

    def select(self, selection: Iterable[str] | pd.Series | pd.DataFrame) -> None:
        """Select instances by code, replacing the current selection.

        ``selection`` is a list of instance ids, a frame with an
        ``instance_id`` column (such as a filtered :attr:`fleet`), or a
        boolean Series over :attr:`fleet`. An empty list clears the
        selection. Raises ``ValueError`` when an id is malformed or not in
        the listed fleet; the selection is then left as it was.
        """
        ids = self._ids_of(selection)
        with self._lock:
            missing = [i for i in ids if i not in self._positions]
            if missing:
                shown = ", ".join(missing[:5])
                more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
                raise ValueError(
                    f"not in the listed fleet: {shown}{more}; click Refresh or "
                    "check the ids"
                )
            self._selected = set(ids)
            positions = sorted(self._positions[i] for i in ids)
        self.table.selected_rows = positions
        self._selection_changed()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the work under way; True when nothing is running any more."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
        return not self._busy

    # -- fleet and selection ---------------------------------------------------

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
            positions = {instance_id: n for n, instance_id in enumerate(ids)}
            vanished = sorted(i for i in self._selected if i not in positions)
            kept = [i for i in ids if i in self._selected]
            self._fleet = fleet.copy()
            self._grid_ids = ids
            self._positions = positions
            self._selected = set(kept)
        # update() does not keep the options the table was made with (it
        # would downsample again past 64 KB): give them every time.
        self.table.update(
            grid, selected_rows=[positions[i] for i in kept], **_FLEET_TABLE_OPTIONS
        )

        listed_at = datetime.now(timezone.utc).strftime("%H:%M:%S UTC")
        failed = int((fleet["status"] == "CREATEFAILED").sum()) if len(fleet) else 0
        self.fleet_info.value = html.escape(
            f"{len(fleet)} instance(s) listed at {listed_at}; "
            f"{failed} whose creation failed"
        )
        if vanished:
            self._say(
                "warning",
                f"{len(vanished)} selected instance(s) are no longer listed and "
                f"were dropped from the selection: {', '.join(vanished)}",
            )
        self._selection_changed()

    def _on_rows(self, change: Mapping[str, Any]) -> None:
        positions = change["new"]
        with self._lock:
            count = len(self._grid_ids)
            self._selected = {self._grid_ids[p] for p in positions if 0 <= p < count}
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
        self._update_plan()

    # -- plan and confirmation -------------------------------------------------

    def _on_action(self, _change: Mapping[str, Any]) -> None:
        self.confirm_box.value = ""
        self._update_plan()

    def _on_typed(self, _change: Mapping[str, Any]) -> None:
        self._update_buttons()

    def _make_plan(self) -> Plan | None:
        action = str(self.action_picker.value)
        with self._lock:
            ids = [i for i in self._grid_ids if i in self._selected]
            fleet = self._fleet
        if not ids:
            return None
        return self.client.plan(action, ids, fleet=fleet)

    def _update_plan(self) -> None:
        self._plan = None
        try:
            self._plan = self._make_plan()
        finally:
            self.plan_area.value = _plan_html(self._plan)
            count = self._plan.count if self._plan is not None else 0
            deleting = str(self.action_picker.value) == "delete"
            self.confirm_row.layout.display = "flex" if deleting else "none"
            self.confirm_label.value = html.escape(
                f"type the number of instances to delete: {count}"
            )
            self._update_buttons()

    def _update_buttons(self) -> None:
        plan = self._plan
        count = plan.count if plan is not None else 0
        action = str(self.action_picker.value)
        busy = self._busy
        ready = count > 0 and not busy
        if action == "delete":
            ready = ready and self._typed_count_matches(count)
        self.run_button.disabled = not ready
        self.run_button.description = f"Run: {action} {count}" if count else "Run"
        self.run_button.button_style = "danger" if action == "delete" else "primary"
        self.cancel_button.disabled = not (busy and self._run is not None)
        self.refresh_button.disabled = busy
        self.delete_failed_button.disabled = busy or not (
            self.delete_failed_confirm.value
        )

    def _typed_count_matches(self, count: int) -> bool:
        return str(self.confirm_box.value).strip() == str(count)

    # -- running ---------------------------------------------------------------

    def _on_run(self, _button: object = None) -> None:
        self._check_idle()
        action = str(self.action_picker.value)
        plan = self._make_plan()
        if plan is None:
            raise ValueError("no instances selected; nothing to do")
        confirm = None
        if action == "delete":
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

    def _on_delete_failed(self, _button: object = None) -> None:
        self._check_idle()
        if not self.delete_failed_confirm.value:
            raise ValueError("tick the box to confirm that every failed creation goes")
        with self._lock:
            fleet = self._fleet
        self._run = None
        self._before_work(1)
        self._start_worker(
            "deleting failed creations", self._execute_delete_failed, fleet
        )

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
        options: dict[str, Any] = {"track": self.track, "on_progress": self._progressed}
        if self.tracking is not None:
            options["tracking"] = self.tracking
        return options

    def _check_idle(self) -> None:
        if self._busy:
            raise ValueError("other work is under way; wait for it to finish")

    def _before_work(self, count: int) -> None:
        self._clear_messages()
        self.summary.value = ""
        self.results_table.layout.display = "none"
        self.progress.max = max(count, 1)
        self.progress.value = 0
        self.progress.bar_style = ""
        self.progress_label.value = "starting"

    def _start_worker(self, what: str, work: Callable[..., None], *args: Any) -> None:
        self._check_idle()

        def body() -> None:
            try:
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

    def _progressed(self, run: Run) -> None:
        # Called by the run after each call and each round of reads.
        self._run = run
        counts = run.counts()
        total = len(run.plan.frame)
        self.progress.max = max(total, 1)
        self.progress.value = total - counts["pending"]
        self.progress_label.value = html.escape(
            f"{run.summary()} ({math.floor(run.elapsed)} s)"
        )
        self._update_buttons()

    def _execute(self, run: Run, fleet: pd.DataFrame) -> None:
        try:
            run.execute()
        finally:
            self._finish(run.results, fleet)

    def _execute_delete_failed(self, fleet: pd.DataFrame) -> None:
        try:
            results = self.client.delete_failed(**self._run_options())
        finally:
            self.delete_failed_confirm.value = False
        self._finish(results, fleet)

    def _finish(self, results: pd.DataFrame, fleet: pd.DataFrame) -> None:
        merged = merge_results(fleet, results)
        with self._lock:
            self._results = results
            self._merged = merged

        summary = str(results.attrs.get("summary", ""))
        self.summary.value = (
            f"<b>{html.escape(summary)}</b><br>"
            "<small>panel.results and panel.merged hold the frames; click "
            "Refresh to list the fleet again.</small>"
        )
        self.progress.value = self.progress.max
        self.progress.bar_style = _bar_style(results)
        self.progress_label.value = html.escape(summary)
        if len(results):
            self.results_table.update(_results_grid(merged), **_RESULT_TABLE_OPTIONS)
            self.results_table.layout.display = ""

        for line in _problem_lines(results):
            self._say("warning", line)
        if str(self.action_picker.value) == "delete":
            self.confirm_box.value = ""

    # -- messages --------------------------------------------------------------

    def _guarded(self, what: str, callback: Callable[..., None]) -> Callable[..., None]:
        def guarded(*args: Any) -> None:
            try:
                callback(*args)
            except Exception as error:
                self._report(what, error)

        return guarded

    def _report(self, what: str, error: Exception) -> None:
        if isinstance(error, DMSError | ValueError):
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
        entry = {
            "output_type": "display_data",
            "data": {
                "text/plain": f"{level}: {text}",
                "text/html": (
                    f'<div style="color:{colour}"><b>{level}:</b> '
                    f"{html.escape(text)}</div>"
                ),
            },
            "metadata": {},
        }
        with self._lock:
            kept = tuple(self.messages.outputs)[-(MESSAGES_KEPT - 1) :]
            self.messages.outputs = (*kept, entry)

    def _clear_messages(self) -> None:
        with self._lock:
            self.messages.outputs = ()


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
    if isinstance(error, ValueError):
        return "nothing was sent; correct it and try again"
    return "this is a dmsnb bug: please report it; the traceback is logged"


# -- tables as the panel shows them ---------------------------------------------


def _empty_frame(columns: Iterable[str]) -> pd.DataFrame:
    frame: pd.DataFrame = pd.DataFrame(
        {name: pd.Series([], dtype="object") for name in columns}
    )
    return frame


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value)


def _created_text(value: object) -> str:
    if isinstance(value, pd.Timestamp) and not pd.isna(value):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return _text(value)


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
            columns[name] = [_created_text(value) for value in values]
        elif name == "tags":
            columns[name] = [_tags_text(value) for value in values]
        else:
            columns[name] = [_text(value) for value in values]
    grid: pd.DataFrame = pd.DataFrame(columns, dtype="object")
    return grid


def _results_grid(merged: pd.DataFrame | None) -> pd.DataFrame:
    """The acted-on rows of ``merged``, escaped, with the result coloured."""
    if merged is None or "result" not in merged.columns:
        return _empty_frame(RESULT_GRID_COLUMNS)
    acted = merged[merged["result"].notna()]
    columns: dict[str, list[str]] = {}
    for name in RESULT_GRID_COLUMNS:
        values = acted[name] if name in acted.columns else [None] * len(acted)
        cells = [html.escape(_text(value)) for value in values]
        if name == "result":
            cells = [_coloured(cell) for cell in cells]
        columns[name] = cells
    grid: pd.DataFrame = pd.DataFrame(columns, dtype="object")
    return grid


def _coloured(result: str) -> str:
    colour = RESULT_COLOURS.get(result, "inherit")
    return f'<b style="color:{colour}">{result}</b>'


def _plan_html(plan: Plan | None) -> str:
    if plan is None:
        return (
            "<i>Nothing selected: click rows in the table (shift-click for a "
            "range) or call panel.select(ids).</i>"
        )

    frame = plan.frame
    statuses = frame["status"].fillna("?").astype(str)
    counts = ", ".join(f"{s} {n}" for s, n in statuses.value_counts().items())
    lines = [f"<b>Plan: {html.escape(plan.summary())}</b> (by status: {counts})"]
    if plan.action == "delete":
        lines.append(
            '<div style="color:#cf222e">Deleting destroys the instances\' data '
            "with no backup.</div>"
        )

    columns = ("instance_id", "name", "status", "allowed", "reason")
    cell = "padding:1px 10px 1px 0;text-align:left;white-space:nowrap"
    head = "".join(f'<th style="{cell}">{name}</th>' for name in columns)
    body = []
    for record in frame.head(PLAN_ROWS_SHOWN).to_dict("records"):
        cells = [
            ("yes" if record["allowed"] else "no")
            if name == "allowed"
            else _text(record.get(name))
            for name in columns
        ]
        body.append(
            "<tr>"
            + "".join(f'<td style="{cell}">{html.escape(c)}</td>' for c in cells)
            + "</tr>"
        )
    lines.append(
        '<table style="border-collapse:collapse;font-size:90%">'
        f"<tr>{head}</tr>{''.join(body)}</table>"
    )
    if len(frame) > PLAN_ROWS_SHOWN:
        lines.append(f"<i>... and {len(frame) - PLAN_ROWS_SHOWN} more</i>")
    return "\n".join(lines)


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


def _header_html(client: Client) -> str:
    # Only what the client's repr shows; never a key or a token.
    line = (
        f"endpoint {client.endpoint} · project {client.project_id} · "
        f"auth {client.credentials.kind} · API {client.api_version}"
    )
    return f"<code>{html.escape(line)}</code>"


def _bar_style(results: pd.DataFrame) -> str:
    outcomes = set(results["result"].dropna().astype(str))
    if not outcomes or outcomes == {"skipped"}:
        return "info"
    if outcomes == {"success"}:
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
