"""The two tables of dmsnb: the instances frame and the results frame."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
else:
    from ._lazy import pd

LEADING_COLUMNS: tuple[str, ...] = (
    "instance_id",
    "name",
    "status",
    "engine_version",
    "specification",
    "created_at",
)
INTEGER_FIELDS: tuple[str, ...] = (
    "partition_num",
    "port",
    "charging_mode",
    "storage_space",
    "total_storage_space",
    "used_storage_space",
    "public_bandwidth",
    "public_boundwidth",
    "broker_num",
)
BOOLEAN_FIELDS: tuple[str, ...] = (
    "ssl_enable",
    "enable_publicip",
    "broker_ssl_enable",
    "disk_encrypted",
    "enable_log_collection",
    "new_auth_cert",
    "cert_replaced",
    "ipv6_enable",
    "rest_enable",
    "trace_enable",
    "agent_enable",
    "new_spec_billing_enable",
)

# The documented fields of an instance besides the leading ones: a frame
# with no rows still has them, so code written for a fleet runs on none.
DOCUMENTED_FIELDS: tuple[str, ...] = (
    "engine",
    "type",
    "port",
    "connect_address",
    "resource_spec_code",
    "charging_mode",
    "vpc_id",
    "vpc_name",
    "product_id",
    "security_group_id",
    "security_group_name",
    "subnet_id",
    "available_zones",
    "user_id",
    "user_name",
    "access_user",
    "maintain_begin",
    "maintain_end",
    "storage_space",
    "total_storage_space",
    "used_storage_space",
    "partition_num",
    "enable_publicip",
    "ssl_enable",
    "storage_resource_id",
    "storage_spec_code",
    "service_type",
    "storage_type",
    "enterprise_project_id",
    "retention_policy",
    "kafka_public_status",
    "public_bandwidth",
    "disk_encrypted",
    "cross_vpc_info",
    "tags",
)

RESULT_COLUMNS: tuple[str, ...] = (
    "instance_id",
    "action",
    "result",
    "reason",
    "status_before",
    "status_after",
    "requested_at",
    "settled_at",
    "duration_s",
    "wave",
    "request_id",
    "error_code",
)
_TEXT_RESULT_COLUMNS = (
    "instance_id",
    "action",
    "result",
    "reason",
    "status_before",
    "status_after",
    "request_id",
    "error_code",
)
RESULTS = ("success", "failed", "skipped", "unknown")


def instances_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Turn instance records, as the service sends them, into a DataFrame.

    Conversions, and nothing else:

    - ``created_at`` (a string of epoch milliseconds) becomes a UTC
      ``datetime64``; an unreadable value becomes ``NaT``.
    - ``partition_num`` (a string holding an int) and the other integer
      fields (``port``, ``charging_mode``, the storage sizes) become the
      nullable ``Int64``; a missing or unreadable value becomes ``<NA>``.
    - The known boolean fields (``ssl_enable``, ``enable_publicip`` ...)
      become the nullable ``boolean``.
    - ``status`` and every other field are kept as given. Lists (``tags``,
      ``available_zones``) stay Python lists; fields dmsnb does not know are
      kept as columns.

    The first columns are ``instance_id, name, status, engine_version,
    specification, created_at``; the rest follow in the order first seen.
    The input is never changed.
    """
    # pandas copies the values into its own arrays and leaves the records be.
    rows = [r if isinstance(r, dict) else dict(r) for r in records]
    if rows:
        frame = pd.DataFrame.from_records(rows)
    else:
        columns = [*LEADING_COLUMNS, *DOCUMENTED_FIELDS]
        frame = pd.DataFrame({c: pd.Series([], dtype="object") for c in columns})
    for column in LEADING_COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.Series([None] * len(frame), dtype="object")

    frame["created_at"] = _epoch_millis(frame["created_at"])
    for column in INTEGER_FIELDS:
        if column in frame.columns:
            frame[column] = _nullable_int(frame[column])
    for column in BOOLEAN_FIELDS:
        if column in frame.columns:
            frame[column] = _nullable_bool(frame[column])
    for column in ("instance_id", "name", "status", "engine_version"):
        frame[column] = frame[column].astype("string")

    rest = [column for column in frame.columns if column not in LEADING_COLUMNS]
    ordered: pd.DataFrame = frame[[*LEADING_COLUMNS, *rest]].reset_index(drop=True)
    return ordered


def _epoch_millis(values: pd.Series) -> pd.Series:
    millis = pd.to_numeric(values, errors="coerce")
    moments: pd.Series = pd.to_datetime(millis, unit="ms", utc=True)
    return moments


def _nullable_int(values: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    whole = numbers.where(numbers.isna() | (numbers == numbers.round()))
    integers: pd.Series = whole.astype("Int64")
    return integers


def _nullable_bool(values: pd.Series) -> pd.Series:
    if values.dtype == bool:  # every value a real bool: nothing to read
        flags: pd.Series = values.astype("boolean")
        return flags

    def read(value: object) -> bool | None:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return None

    return pd.Series([read(value) for value in values], index=values.index).astype(
        "boolean"
    )


def results_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per requested instance, with the :data:`RESULT_COLUMNS` first.

    Text columns become ``string``, ``requested_at``/``settled_at`` UTC
    datetimes, ``duration_s`` ``Float64`` and ``wave`` ``Int64``.
    """
    frame = pd.DataFrame.from_records([dict(row) for row in rows])
    for column in RESULT_COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.Series([None] * len(frame), dtype="object")
    rest = [column for column in frame.columns if column not in RESULT_COLUMNS]
    frame = pd.DataFrame(frame[[*RESULT_COLUMNS, *rest]])
    for column in _TEXT_RESULT_COLUMNS:
        frame[column] = frame[column].astype("string")
    for column in ("requested_at", "settled_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["duration_s"] = pd.to_numeric(frame["duration_s"]).astype("Float64")
    frame["wave"] = pd.to_numeric(frame["wave"]).astype("Int64")
    tidy: pd.DataFrame = frame.reset_index(drop=True)
    return tidy


def merge_results(instances: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """Add the result columns to the instances frame, on ``instance_id``.

    Returns a new frame: every row and column of ``instances`` in its order,
    then the result columns; rows that were not acted on have empty result
    cells. Result columns that ``instances`` already has (from an earlier
    merge) are replaced, so merging the same results twice gives the same
    frame. A result for an instance that is not in ``instances`` (deleted
    and since gone from a refreshed list) is kept as an extra row at the end,
    so no result is ever dropped. Neither argument is changed.
    """
    for name, frame in (("instances", instances), ("results", results)):
        if "instance_id" not in frame.columns:
            raise ValueError(f"{name} has no 'instance_id' column to merge on")
    repeated = results["instance_id"][results["instance_id"].duplicated()]
    if not repeated.empty:
        twice = sorted(set(map(str, repeated)))
        ids = ", ".join(twice[:10]) + (
            f" and {len(twice) - 10} more" if len(twice) > 10 else ""
        )
        raise ValueError(
            f"results has more than one row for {ids}; merge one batch at a time"
        )

    result_columns = [c for c in results.columns if c != "instance_id"]
    base = instances.drop(
        columns=[c for c in result_columns if c in instances.columns]
    ).reset_index(drop=True)
    # One row per instance in results is checked above, so the merge keeps
    # the rows of instances as they are.
    merged = base.merge(results, on="instance_id", how="left", sort=False)

    # A hash lookup; Series.isin on text columns goes value by value.
    known = pd.Index(base["instance_id"].dropna()).unique()
    extra = results[known.get_indexer(results["instance_id"]) < 0]
    if not extra.empty:
        merged = pd.concat([merged, extra], ignore_index=True)
    combined: pd.DataFrame = merged
    return combined
