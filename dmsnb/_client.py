"""``Client``: the DMS for Kafka instance API over one synchronous httpx client.

Reads (list, show) may be sent concurrently on a small thread pool; writes
(batch actions, deletes) are sent one call at a time, in order, and never
retried by this module: an action whose answer is lost is reported as
``unknown`` for each of its instances, never sent again.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    import pandas as pd
else:
    from ._lazy import pd

from . import _api
from ._audit import DEFAULT_AUDIT_PATH, AuditTrail
from ._concurrency import AdaptiveLimit
from ._credentials import Credentials, resolve_credentials
from ._endpoints import endpoint_for_region, normalise_endpoint
from ._errors import (
    ActionOutcomeUnknown,
    APIError,
    ConfigError,
    DMSError,
    TransportError,
)
from ._frames import instances_frame
from ._ids import checked_instance_ids
from ._plan import PLAN_ACTIONS, Plan, Protection, build_plan
from ._retry import CallKind, Failure, Outcome, RetryPolicy, decide, parse_retry_after
from ._run import Run, Tracking
from ._signing import AKSKAuth, RenewingTokenAuth, TokenAuth

logger = logging.getLogger(__name__)

USER_AGENT = "dmsnb/0.1"
DEFAULT_MAX_WORKERS = 16
"""How many list pages (and, while tracking, status reads) are sent at once."""
_SWEEP_ATTEMPTS = 3


class Client:
    """A client for the Kafka instances of one project.

    Give the endpoint (``endpoint="https://dms.eu-de.otc.t-systems.com"``) or a
    region (``region="eu-de"``), the project id, and either an AK/SK pair
    (``ak=..., sk=...``, plus ``security_token=...`` for temporary keys) or an
    IAM token (``token=...``). ``api_version`` is ``"v2"`` (the default) or
    ``"v1"`` (the v1.0 paths and names). ``simulator=True`` marks the endpoint
    as a dmsnb simulator (``Simulator.client()`` sets it); nothing else does.

    ``retry`` (:class:`dmsnb.RetryPolicy`) bounds the retries of reads and
    of writes that provably never arrived; ``tracking``
    (:class:`dmsnb.Tracking`) is how runs follow instances; ``audit`` is the
    path of the JSON Lines audit trail (``None`` turns it off).

    ``max_workers`` (default 16) bounds how many list pages are read at
    once; after a 429 dmsnb reads half as many at once, and more again as
    answers come back.

    Each request is one INFO line on the ``dmsnb`` logger (method, path,
    status, milliseconds), each retry another; headers, keys, tokens and
    signatures are never logged.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        project_id: str | None = None,
        ak: str | None = None,
        sk: str | None = None,
        token: str | None = None,
        security_token: str | None = None,
        region: str | None = None,
        api_version: str = "v2",
        simulator: bool = False,
        timeout: float = 30.0,
        max_workers: int = DEFAULT_MAX_WORKERS,
        credentials: Credentials | None = None,
        retry: RetryPolicy | None = None,
        tracking: Tracking | None = None,
        audit: str | os.PathLike[str] | AuditTrail | None = DEFAULT_AUDIT_PATH,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if api_version not in _api.API_VERSIONS:
            raise ValueError(f"api_version must be 'v2' or 'v1', not {api_version!r}")
        keys = (project_id, ak, sk, token, security_token)
        if credentials is not None and any(value is not None for value in keys):
            raise ConfigError(
                "give credentials=... or project_id/ak/sk/token, not both"
            )
        if credentials is not None and not endpoint and not region:
            # Where the credentials' source says the project is served.
            endpoint = credentials.endpoint
            region = None if endpoint else credentials.region
        if endpoint and region:
            raise ConfigError("give endpoint=... or region=..., not both")
        if not endpoint and not region:
            raise ConfigError(
                "no endpoint: pass region=... (e.g. 'eu-de', 'ap-southeast-1') "
                "or endpoint=..."
            )
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, not {max_workers}")

        self.endpoint = normalise_endpoint(
            endpoint if endpoint else endpoint_for_region(str(region))
        )
        self.region = region
        self.api_version = api_version
        self.max_workers = max_workers
        self._page_limit = AdaptiveLimit(max_workers)
        self.retry = retry or RetryPolicy()
        self.tracking = tracking or Tracking()
        self.audit = (
            audit
            if isinstance(audit, AuditTrail) or audit is None
            else (AuditTrail(audit))
        )
        self.last_run: Run | None = None
        self.credentials = credentials or Credentials(
            project_id=project_id or "",
            access_key=ak,
            secret_key=sk,
            security_token=security_token,
            token=token,
        )
        self.project_id = self.credentials.project_id
        # Only an explicit flag says "simulator": a loopback endpoint can be a
        # tunnel or proxy to the real service.
        self.is_simulator = simulator

        self._http = httpx.Client(
            base_url=self.endpoint,
            auth=_auth_for(self.credentials),
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": USER_AGENT, "Content-Type": "application/json"},
            limits=httpx.Limits(max_connections=max(10, max_workers * 2)),
        )

    @classmethod
    def from_env(
        cls,
        endpoint: str | None = None,
        *,
        region: str | None = None,
        project_id: str | None = None,
        **options: Any,
    ) -> Client:
        """A client with the credentials of the official SDK's variables.

        ``HUAWEICLOUD_SDK_AK``, ``HUAWEICLOUD_SDK_SK``,
        ``HUAWEICLOUD_SDK_PROJECT_ID`` and, for temporary keys,
        ``HUAWEICLOUD_SDK_SECURITY_TOKEN``.
        """
        credentials = Credentials.from_env(project_id=project_id)
        return cls(endpoint, region=region, credentials=credentials, **options)

    @classmethod
    def from_profile(
        cls,
        profile: str | None = None,
        *,
        region: str | None = None,
        endpoint: str | None = None,
        project_id: str | None = None,
        **options: Any,
    ) -> Client:
        """A client with the credentials users keep: a profile, or the first found.

        ``profile`` names a section of the official SDK's credentials file or
        a cloud of ``clouds.yaml`` (``DMSNB_PROFILE`` when not given); with
        no profile the SDK's variables, its credentials file and
        ``clouds.yaml`` are tried in that order (see
        :func:`dmsnb.resolve_credentials`). The region comes from the
        profile (``region_name`` or ``dms_endpoint_override`` in
        ``clouds.yaml``) unless ``region`` or ``endpoint`` is given.
        ``client.credentials.source`` says where the credentials came from.
        """
        credentials = resolve_credentials(profile, project_id=project_id)
        known = credentials.region or credentials.endpoint
        if not endpoint and not region and not known:
            raise ConfigError(
                f"the credentials from {credentials.source} name no region; pass "
                "region=... (e.g. 'eu-de') or endpoint=..."
            )
        return cls(endpoint, region=region, credentials=credentials, **options)

    def __repr__(self) -> str:
        where = "SIMULATOR " if self.is_simulator else ""
        return (
            f"<dmsnb.Client {where}endpoint={self.endpoint} "
            f"project={self.project_id} auth={self.credentials.kind} "
            f"api={self.api_version}>"
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reads -------------------------------------------------------------

    def instances(
        self,
        *,
        name: str | None = None,
        exact_name: str | None = None,
        status: str | Iterable[str] | None = None,
        instance_id: str | None = None,
        include_failed: bool = False,
    ) -> pd.DataFrame:
        """Every Kafka instance of the project, across all pages, as a frame.

        ``name`` matches part of the name, ``exact_name`` the whole name;
        ``status`` is one of the service's statuses (``RUNNING``, ``ERROR``
        ...; any case) or several of them; ``include_failed=True`` adds the
        instances whose creation failed (asking for ``CREATEFAILED`` implies
        it). See :func:`dmsnb.instances_frame` for the columns and types.
        """
        statuses = _checked_statuses(status)
        if "CREATEFAILED" in statuses:
            include_failed = True
        # The service filters by one status; several are filtered here.
        one = statuses[0] if len(statuses) == 1 else None
        filters = _list_filters(name, exact_name, one, instance_id, include_failed)
        records = self._list_all(filters)
        if len(statuses) > 1:
            records = [r for r in records if r.get("status") in statuses]
        return instances_frame(records)

    def instance(self, instance_id: str) -> dict[str, Any]:
        """One instance's record as the service sends it.

        Raises :class:`dmsnb.NotFoundError` when it does not exist (any more).
        """
        if not _api.is_instance_id(instance_id):
            raise ValueError(f"{instance_id!r} is not an instance id (a UUID)")
        path = _api.instance_path(self.api_version, self.project_id, instance_id)
        _, payload = self._send("GET", path)
        if not isinstance(payload, dict):
            raise TransportError(f"GET {path} answered a body that is not an object")
        return payload

    def _list_all(self, filters: Mapping[str, Any]) -> list[dict[str, Any]]:
        # A sweep is consistent when every page reports the same total and the
        # distinct instances add up to it. A fleet that changes while it is
        # being read can break that; such a sweep is read again.
        records: list[dict[str, Any]] = []
        for attempt in range(1, _SWEEP_ATTEMPTS + 1):
            records, consistent = self._sweep(filters)
            if consistent:
                return records
            logger.info("list changed while paging; reading again (%d)", attempt)
        logger.warning(
            "the instance list kept changing while it was read; "
            "returning the %d instances seen in the last sweep",
            len(records),
        )
        return records

    def _sweep(self, filters: Mapping[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        first = self._page(filters, 0)
        offsets = range(_api.PAGE_LIMIT, first.total, _api.PAGE_LIMIT)
        pages = [first]
        if offsets:
            workers = min(self.max_workers, len(offsets))
            with ThreadPoolExecutor(workers, thread_name_prefix="dmsnb-page") as pool:
                pages += list(pool.map(lambda o: self._later_page(filters, o), offsets))

        seen: dict[str, dict[str, Any]] = {}
        for page in pages:
            for record in page.instances:
                seen.setdefault(str(record.get("instance_id")), record)
        totals = {page.total for page in pages}
        consistent = totals == {first.total} and len(seen) == first.total
        return list(seen.values()), consistent

    def _later_page(self, filters: Mapping[str, Any], offset: int) -> _api.Page:
        # The first page said how many there are; if the fleet shrank since,
        # this offset can be past the new total, which the service refuses.
        # That page is then empty and the sweep inconsistent, not an error.
        try:
            return self._page(filters, offset)
        except APIError as error:
            if error.status_code == 400 and error.error_code == _api.OFFSET_ERROR:
                return _api.Page(instances=[], total=-1)
            raise

    def _sweep_once(self, filters: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One paged sweep of the list, as it is (used to follow instances)."""
        records, _ = self._sweep(filters)
        return records

    def _page(self, filters: Mapping[str, Any], offset: int) -> _api.Page:
        path = _api.instances_path(self.api_version, self.project_id)
        params = _api.list_params(self.api_version, filters, offset, _api.PAGE_LIMIT)
        # A slot per page, its retries included: fewer pages go out at once
        # after a 429, and more again as answers come back.
        with self._page_limit.slot():
            _, payload = self._send("GET", path, params=params)
            self._page_limit.succeeded()
        try:
            return _api.parse_page(payload)
        except ValueError as error:
            raise TransportError(f"GET {path}: {error}") from error

    # -- actions -----------------------------------------------------------

    def plan(
        self,
        action: str,
        selection: Iterable[str] | pd.DataFrame | None = None,
        *,
        protect: Protection | Sequence[Protection] = (),
        fleet: pd.DataFrame | None = None,
    ) -> Plan:
        """What ``action`` would do to the selection now; nothing is sent.

        ``action`` is ``restart``, ``delete`` or ``delete_failed`` (which
        selects every failed creation itself). The selection is a list of
        ids, a Series of ids or a frame with ``instance_id``. The plan reads
        a fresh list of the fleet unless ``fleet`` is given; executing it
        checks again that nothing changed.
        """
        if action not in PLAN_ACTIONS:
            raise ValueError(
                f"unknown action {action!r}; use one of {', '.join(PLAN_ACTIONS)}"
            )
        if action != "delete_failed":
            checked_instance_ids(selection if selection is not None else [])
        if fleet is None:
            fleet = self.instances(include_failed=True)
        return build_plan(
            action,
            selection,
            fleet,
            endpoint=self.endpoint,
            project_id=self.project_id,
            protect=protect,
        )

    def run(self, plan: Plan, **options: Any) -> Run:
        """A :class:`Run` of ``plan``, not yet started; see :meth:`execute`."""
        options.setdefault("audit", self.audit)
        options.setdefault("tracking", self.tracking)
        return Run(self, plan, **options)

    def execute(self, plan: Plan, **options: Any) -> pd.DataFrame:
        """Execute ``plan`` and follow every instance until it settles.

        Options: ``confirm`` (for a delete, the plan's count), ``dry_run``,
        ``wave_size`` (a rolling action: each wave only after the previous
        settled), ``stop_on_failure`` (default True), ``pause_seconds``
        between waves, ``track`` (default True), ``tracking``
        (:class:`dmsnb.Tracking`: timeout, settle time, poll interval),
        ``on_progress``. Returns one row per planned instance; the run stays
        readable as :attr:`last_run`, also after an interrupt.
        """
        run = self.run(plan, **options)
        self.last_run = run
        return run.execute()

    def restart(
        self, instance_ids: Iterable[str] | pd.DataFrame, **options: Any
    ) -> pd.DataFrame:
        """Plan and restart the instances, and follow them until RUNNING.

        Instances that are not RUNNING are skipped with the reason. While
        restarting, an instance refuses its clients' produce and consume
        requests. Takes the options of :meth:`execute` (``wave_size`` for a
        rolling restart) and ``protect``.
        """
        return self.batch_action("restart", instance_ids, **options)

    def delete(
        self,
        instance_ids: Iterable[str] | pd.DataFrame,
        *,
        confirm: int | None = None,
        **options: Any,
    ) -> pd.DataFrame:
        """Plan and delete the instances; ``confirm`` must be the plan's count.

        Deleting destroys the instances' data with no backup. Instances the
        service would refuse, or that a ``protect`` rule covers, are skipped;
        ``confirm`` counts the instances that will really go.
        """
        return self.batch_action("delete", instance_ids, confirm=confirm, **options)

    def delete_failed(
        self, *, confirm: int | None = None, **options: Any
    ) -> pd.DataFrame:
        """Delete every Kafka instance of the project whose creation failed.

        dmsnb lists the failed creations first (they are the plan; see it
        with ``client.plan("delete_failed")``), checks just before sending
        that they are still exactly those, sends the service's
        "delete all failed creations" call, and follows each planned
        instance until it is gone. ``confirm`` must be the planned count.
        The service itself answers 204 without naming instances; the summary
        in ``attrs["summary"]`` says so. When a ``protect`` rule covers one
        of them, the others are deleted by id instead.
        """
        protect = options.pop("protect", ())
        plan = self.plan("delete_failed", protect=protect)
        if plan.count == 0 and not options.get("dry_run"):
            results = Run(self, plan, dry_run=True, audit=None).execute()
            results.attrs["summary"] = (
                "delete_failed: no instance whose creation failed; nothing was sent"
            )
            return results
        results = self.execute(plan, confirm=confirm, **options)
        if plan.use_all_failure and not options.get("dry_run"):
            results.attrs["summary"] += all_failure_note(plan.count)
        return results

    def batch_action(
        self,
        action: str,
        instance_ids: Iterable[str] | pd.DataFrame,
        *,
        confirm: int | None = None,
        protect: Protection | Sequence[Protection] = (),
        **options: Any,
    ) -> pd.DataFrame:
        """Plan ``action`` for the instances and execute the plan.

        Every requested instance gets exactly one result row. See
        :meth:`plan` and :meth:`execute`.
        """
        plan = self.plan(action, instance_ids, protect=protect)
        return self.execute(plan, confirm=confirm, **options)

    def _post_action(
        self, action: str, ids: list[str], *, all_failure: bool = False
    ) -> ActionAnswer:
        """Send one batch call (at most 50 ids) and classify its answer.

        Never raises for what the service or the network did: every id gets
        ``accepted``, ``failed`` (refused), ``not_sent`` or ``lost`` (sent,
        answer unknown).
        """
        if not all_failure and not 0 < len(ids) <= _api.BATCH_LIMIT:
            raise ValueError(f"a batch call takes 1 to 50 ids, not {len(ids)}")
        path = _api.action_path(self.api_version, self.project_id)
        body = _api.action_body(self.api_version, action, ids, all_failure=all_failure)
        try:
            response, payload = self._send("POST", path, json_body=body, write=True)
        except APIError as error:
            return ActionAnswer.same(ids, "failed", error, error.request_id)
        except TransportError as error:
            outcome = "not_sent" if error.sent is False else "lost"
            return ActionAnswer.same(ids, outcome, error, None)

        request_id = response.headers.get("X-Request-Id")
        if response.status_code == 204 or payload is None:
            return ActionAnswer.same(ids, "accepted", None, request_id, 204)
        try:
            answered = _api.parse_action_results(payload)
        except ValueError as error:
            lost = TransportError(f"POST {path}: {error}", sent=True)
            return ActionAnswer.same(ids, "lost", lost, request_id)

        extra = sorted(set(answered) - set(ids))
        if extra:
            logger.warning("the %s answer names unrequested ids: %s", action, extra)
        outcomes = {}
        for instance_id in ids:
            result = answered.get(instance_id)
            if result == "success":
                outcomes[instance_id] = "accepted"
            elif result == "failed":
                outcomes[instance_id] = "failed"
            else:
                outcomes[instance_id] = "lost"
        return ActionAnswer(outcomes, request_id, None, response.status_code)

    # -- transport ---------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: object = None,
        write: bool = False,
    ) -> tuple[httpx.Response, object]:
        """Send one call under the retry policy; the answer and its JSON body.

        The body is None for an empty answer (204). Raises :class:`APIError`
        for an error answer, :class:`TransportError` when nothing usable came
        back, and :class:`ActionOutcomeUnknown` when a write was sent and its
        answer was lost (which is never retried).
        """
        kind: CallKind = "write" if write else "read"
        content = None if json_body is None else json.dumps(json_body).encode()
        first_try = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._send_once(method, path, params, content)
            except APIError as error:
                failure: DMSError = error
                if error.status_code == 429:
                    self._page_limit.throttled()
                outcome = Outcome(
                    "http",
                    status_code=error.status_code,
                    error_code=error.error_code,
                    retry_after=error.retry_after,
                )
            except _Unanswered as error:
                failure = error.as_error(method, path, write)
                outcome = Outcome(error.failure)

            elapsed = time.monotonic() - first_try
            decision = decide(kind, outcome, attempt, elapsed, self.retry)
            if not decision.retry:
                if (
                    write
                    and isinstance(failure, APIError)
                    and failure.status_code >= 500
                ):
                    raise ActionOutcomeUnknown(
                        f"{method} {path}: the service answered {failure}; "
                        "it may have acted",
                        sent=True,
                    ) from failure
                raise failure
            logger.info(
                "retrying %s %s in %.2f s: %s (attempt %d)",
                method,
                path,
                decision.delay,
                decision.why,
                attempt + 1,
            )
            time.sleep(decision.delay)

    def _send_once(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        content: bytes | None,
    ) -> tuple[httpx.Response, object]:
        started = time.perf_counter()
        try:
            response = self._http.request(method, path, params=params, content=content)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            raise _Unanswered("refused", error) from error
        except httpx.TimeoutException as error:
            raise _Unanswered("timeout", error) from error
        except httpx.TransportError as error:
            raise _Unanswered("reset", error) from error

        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.info(
            "%s %s -> %d (%.0f ms)", method, path, response.status_code, elapsed_ms
        )
        if response.status_code >= 400:
            raise _api.api_error(
                response.status_code,
                response.content,
                response.headers.get("X-Request-Id"),
                method=method,
                path=path,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if not response.content:
            return response, None
        try:
            return response, response.json()
        except ValueError as error:
            raise _Unanswered("bad_body", error, response.status_code) from error


class _Unanswered(Exception):
    """No usable answer to one attempt; becomes a DMSError when it is final."""

    def __init__(
        self, failure: Failure, cause: Exception, status_code: int | None = None
    ) -> None:
        super().__init__(failure)
        self.failure = failure
        self.cause = cause
        self.status_code = status_code

    def as_error(self, method: str, path: str, write: bool) -> TransportError:
        what = f"{type(self.cause).__name__}: {self.cause}"
        if self.failure == "refused":
            message = f"{method} {path}: could not connect ({what}); nothing was sent"
            error = TransportError(message, sent=False)
        elif write:
            message = (
                f"{method} {path}: the request was sent but its answer was lost "
                f"({what}); the service may have acted"
            )
            error = ActionOutcomeUnknown(message, sent=True)
        elif self.failure == "bad_body":
            message = (
                f"{method} {path}: HTTP {self.status_code} with a body that is not JSON"
            )
            error = TransportError(message, sent=True)
        else:
            error = TransportError(f"{method} {path}: no answer ({what})", sent=True)
        error.__cause__ = self.cause
        return error


def _auth_for(credentials: Credentials) -> httpx.Auth:
    if credentials.token_provider is not None:
        return RenewingTokenAuth(credentials.token_provider, credentials.project_id)
    if credentials.token:
        return TokenAuth(credentials.token, credentials.project_id)
    assert credentials.access_key and credentials.secret_key
    return AKSKAuth(
        credentials.access_key,
        credentials.secret_key,
        credentials.project_id,
        credentials.security_token,
    )


def all_failure_note(count: int) -> str:
    """What a summary adds after the service's delete-all-failed call."""
    return (
        "; the service deleted its failed creations without naming them "
        f"(HTTP 204): dmsnb followed the {count} it had listed and checked "
        "just before sending"
    )


def _checked_statuses(status: str | Iterable[str] | None) -> list[str]:
    if status is None:
        return []
    given = [status] if isinstance(status, str) else list(status)
    wanted = [str(value).strip().upper() for value in given]
    unknown = [
        value
        for value, upper in zip(given, wanted, strict=True)
        if upper not in _api.STATUSES
    ]
    if unknown or not wanted:
        shown = ", ".join(repr(value) for value in unknown) or "none"
        raise ValueError(
            f"unknown status {shown}; use one or more of {', '.join(_api.STATUSES)}"
        )
    return wanted


def _list_filters(
    name: str | None,
    exact_name: str | None,
    status: str | None,
    instance_id: str | None,
    include_failed: bool,
) -> dict[str, Any]:
    if name is not None and exact_name is not None:
        raise ValueError("give name=... (part of a name) or exact_name=..., not both")
    if instance_id is not None and not _api.is_instance_id(instance_id):
        raise ValueError(f"{instance_id!r} is not an instance id (a UUID)")
    filters: dict[str, Any] = {
        "name": exact_name if exact_name is not None else name,
        "exact_match_name": True if exact_name is not None else None,
        "status": status,
        "instance_id": instance_id,
        "include_failure": True if include_failed else None,
    }
    return filters


@dataclass(frozen=True)
class ActionAnswer:
    """What one batch call came back with, per instance id."""

    outcomes: dict[str, str]
    request_id: str | None
    error: DMSError | None
    status_code: int | None = None

    @classmethod
    def same(
        cls,
        ids: list[str],
        outcome: str,
        error: DMSError | None,
        request_id: str | None,
        status_code: int | None = None,
    ) -> ActionAnswer:
        if status_code is None and isinstance(error, APIError):
            status_code = error.status_code
        return cls({i: outcome for i in ids}, request_id, error, status_code)
