"""The DMS for Kafka wire format in one place: paths, parameter names, answers.

Nothing here does I/O. Two generations of the API are served: ``v2`` (the
recommended one, snake_case names) and ``v1`` (the v1.0 paths, with the
camelCase names ``includeFailure``, ``exactMatchName``, ``id`` and
``allFailure``).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ._errors import APIError, AuthError, NotFoundError

ApiVersion = Literal["v1", "v2"]
API_VERSIONS: tuple[str, ...] = ("v1", "v2")
ACTIONS: tuple[str, ...] = ("restart", "delete")
STATUSES: tuple[str, ...] = (
    "CREATING",
    "CREATEFAILED",
    "RUNNING",
    "RESTARTING",
    "STARTING",
    "STOPPING",
    "ERROR",
    "EXTENDING",
    "EXTENDEDFAILED",
    "UPGRADING",
    "ROLLINGBACK",
    "FREEZING",
    "FROZEN",
    "CLOSING",
    "DELETING",
    "RECYCLE",
)
"""The union of the instance statuses the service documents."""

PAGE_LIMIT = 50
"""The largest page the list call serves, and the largest batch action."""
BATCH_LIMIT = 50
OFFSET_ERROR = "DMS.10240043"
"""The code of a list page whose offset is past the total (or invalid)."""

_PATH_PREFIX = {"v1": "v1.0", "v2": "v2"}

LIST_FILTERS: dict[str, dict[str, str]] = {
    # user-facing name -> wire name, per version
    "v2": {
        "name": "name",
        "exact_match_name": "exact_match_name",
        "status": "status",
        "instance_id": "instance_id",
        "include_failure": "include_failure",
        "enterprise_project_id": "enterprise_project_id",
    },
    "v1": {
        "name": "name",
        "exact_match_name": "exactMatchName",
        "status": "status",
        "instance_id": "id",
        "include_failure": "includeFailure",
        "enterprise_project_id": "enterprise_project_id",
    },
}

_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


def is_instance_id(value: object) -> bool:
    """True when ``value`` is a string in the 8-4-4-4-12 UUID form."""
    return isinstance(value, str) and bool(_UUID.match(value))


def new_request_id() -> str:
    return uuid.uuid4().hex


def instances_path(api_version: str, project_id: str) -> str:
    return f"/{_PATH_PREFIX[api_version]}/{project_id}/instances"


def instance_path(api_version: str, project_id: str, instance_id: str) -> str:
    return f"{instances_path(api_version, project_id)}/{instance_id}"


def action_path(api_version: str, project_id: str) -> str:
    return f"{instances_path(api_version, project_id)}/action"


def list_params(
    api_version: str, filters: Mapping[str, Any], offset: int, limit: int
) -> dict[str, str]:
    """Query parameters of one list page. ``engine=kafka`` is always sent.

    v1.0 is not documented to page; its offset and limit are sent under the
    same names, which the service accepts.
    """
    names = LIST_FILTERS[api_version]
    params: dict[str, str] = {"engine": "kafka"}
    for key, value in filters.items():
        if value is None:
            continue
        wire = names[key]
        params[wire] = str(value).lower() if isinstance(value, bool) else str(value)
    params["offset"] = str(offset)
    params["limit"] = str(limit)
    return params


def action_body(
    api_version: str,
    action: str,
    instance_ids: Iterable[str] | None = None,
    *,
    all_failure: bool = False,
    force_delete: bool | None = None,
) -> dict[str, Any]:
    """The JSON body of a batch action."""
    body: dict[str, Any] = {"action": action}
    if all_failure:
        body["allFailure" if api_version == "v1" else "all_failure"] = "kafka"
    else:
        body["instances"] = list(instance_ids or [])
    if force_delete is not None and api_version == "v2":
        body["force_delete"] = force_delete
    return body


@dataclass(frozen=True)
class Page:
    instances: list[dict[str, Any]]
    total: int


def parse_page(payload: object) -> Page:
    """Read one list answer: ``{"instances": [...], "instance_num": N}``."""
    if not isinstance(payload, dict) or not isinstance(payload.get("instances"), list):
        raise ValueError("the list answer has no 'instances' array")
    instances = [item for item in payload["instances"] if isinstance(item, dict)]
    total = payload.get("instance_num", len(instances))
    try:
        total = int(total)
    except (TypeError, ValueError):
        raise ValueError(f"the list answer has a bad instance_num: {total!r}") from None
    return Page(instances=instances, total=total)


def parse_action_results(payload: object) -> dict[str, str]:
    """Read a batch answer into ``{instance_id: "success" | "failed"}``."""
    if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
        raise ValueError("the batch answer has no 'results' array")
    outcome: dict[str, str] = {}
    for entry in payload["results"]:
        if isinstance(entry, dict) and isinstance(entry.get("instance"), str):
            outcome[entry["instance"]] = str(entry.get("result", ""))
    return outcome


def _first(body: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = body.get(name)
        if value not in (None, ""):
            return str(value)
    return None


def error_fields(body: object) -> tuple[str | None, str | None, str | None]:
    """``(error_code, error_msg, request_id)`` from any documented error body.

    The service uses ``error_code``/``error_msg``; the gateway adds
    ``request_id``; the official SDK also accepts ``errorCode``/``errorMsg``
    and ``code``/``message``; some answers nest them under ``error``.
    """
    if not isinstance(body, dict):
        return None, None, None
    nested = body.get("error")
    if isinstance(nested, dict):
        inner_code, inner_msg, inner_id = error_fields(nested)
        outer_id = _first(body, "request_id", "requestId")
        return inner_code, inner_msg, inner_id or outer_id
    code = _first(body, "error_code", "errorCode", "code")
    message = _first(body, "error_msg", "errorMsg", "message", "msg")
    request_id = _first(body, "request_id", "requestId")
    return code, message, request_id


def api_error(
    status_code: int,
    content: bytes,
    header_request_id: str | None,
    *,
    method: str | None = None,
    path: str | None = None,
    retry_after: float | None = None,
) -> APIError:
    """Build the right :class:`APIError` from an error answer."""
    try:
        body: object = json.loads(content) if content else None
    except (ValueError, UnicodeDecodeError):
        body = None

    code, message, body_request_id = error_fields(body)
    if message is None and body is None and content:
        message = content[:200].decode("utf-8", "replace")
    request_id = header_request_id or body_request_id

    cls: type[APIError] = APIError
    if status_code in (401, 403):
        cls = AuthError
    elif status_code == 404:
        cls = NotFoundError
    error = cls(status_code, code, message, request_id, method=method, path=path)
    error.retry_after = retry_after
    return error
