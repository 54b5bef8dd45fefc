from __future__ import annotations

import subprocess
import sys

import dmsnb

PUBLIC = {
    "APIError",
    "ActionOutcomeUnknown",
    "AuthError",
    "Client",
    "ConfigError",
    "Credentials",
    "DMSError",
    "NotFoundError",
    "Panel",
    "TransportError",
    "__version__",
    "checked_instance_ids",
    "endpoint_for_region",
    "instances_frame",
    "merge_results",
    "results_frame",
    "AuditTrail",
    "Plan",
    "PlanError",
    "Protection",
    "RetryPolicy",
    "Run",
    "Tracking",
    "audit_outcomes",
    "read_audit",
    "MultiClient",
    "MultiPlan",
    "PasswordLogin",
    "resolve_credentials",
}


def test_public_names_are_pinned() -> None:
    assert set(dmsnb.__all__) == PUBLIC
    for name in PUBLIC - {"Panel"}:
        assert hasattr(dmsnb, name), name


def test_every_error_derives_from_the_root() -> None:
    for name in PUBLIC:
        value = getattr(dmsnb, name, None) if name != "Panel" else None
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, dmsnb.DMSError), name


def test_import_does_not_load_the_widget_stack_or_pandas() -> None:
    # pandas loads on first use (dmsnb._lazy), so `import dmsnb` stays quick.
    code = (
        "import sys, dmsnb; c = dmsnb.Client; "
        "bad = [m for m in ('ipywidgets', 'itables', 'anywidget', 'IPython', "
        "'matplotlib', 'pandas') if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
