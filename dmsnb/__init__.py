"""dmsnb: batch restart and delete of DMS for Kafka instances, from Jupyter.

List the fleet into a pandas DataFrame, pick instances, act on them, and get
one result row per instance merged back into the table::

    import dmsnb

    client = dmsnb.Client(region="eu-de", project_id=..., ak=..., sk=...)
    fleet = client.instances()
    results = client.restart(fleet[fleet.name.str.startswith("kafka-test")])
    dmsnb.merge_results(fleet, results)

The widget panel (``dmsnb.Panel``) needs the notebook extra
(``pip install 'dmsnb[notebook]'``) and is imported only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._audit import AuditTrail, audit_outcomes, read_audit
from ._client import Client
from ._credentials import Credentials, resolve_credentials
from ._endpoints import endpoint_for_region
from ._errors import (
    ActionOutcomeUnknown,
    APIError,
    AuthError,
    ConfigError,
    DMSError,
    NotFoundError,
    TransportError,
)
from ._frames import instances_frame, merge_results, results_frame
from ._iam import PasswordLogin
from ._ids import checked_instance_ids
from ._multi import MultiClient, MultiPlan
from ._plan import Plan, Protection
from ._retry import RetryPolicy
from ._run import PlanError, Run, Tracking

if TYPE_CHECKING:
    from ._panel import Panel

__version__ = "0.1.0"

__all__ = [
    "APIError",
    "ActionOutcomeUnknown",
    "AuditTrail",
    "AuthError",
    "Client",
    "ConfigError",
    "Credentials",
    "DMSError",
    "MultiClient",
    "MultiPlan",
    "NotFoundError",
    "Panel",
    "PasswordLogin",
    "Plan",
    "PlanError",
    "Protection",
    "RetryPolicy",
    "Run",
    "Tracking",
    "TransportError",
    "__version__",
    "audit_outcomes",
    "checked_instance_ids",
    "endpoint_for_region",
    "instances_frame",
    "merge_results",
    "read_audit",
    "resolve_credentials",
    "results_frame",
]


def __getattr__(name: str) -> Any:
    # The panel pulls in ipywidgets and itables; load it only when asked for.
    if name == "Panel":
        from ._panel import Panel

        return Panel
    raise AttributeError(f"module 'dmsnb' has no attribute {name!r}")
