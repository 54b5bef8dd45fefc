"""Checking a selection of instances before anything is sent."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
else:
    from ._lazy import pd

from . import _api


def checked_instance_ids(selection: Iterable[str] | pd.DataFrame) -> list[str]:
    """The ids of a selection, checked before anything is sent.

    A selection is a list (or any iterable) of ids, a Series of ids, or a
    frame with an ``instance_id`` column. Raises ``ValueError`` naming the
    offending ids when it is empty, holds a non-UUID, or holds an id twice.
    """
    if isinstance(selection, pd.DataFrame):
        if "instance_id" not in selection.columns:
            raise ValueError("the frame has no 'instance_id' column to act on")
        selection = selection["instance_id"]
    if isinstance(selection, (str, bytes)):
        raise ValueError(
            "pass a list of instance ids, not a single string: ["
            + repr(selection)
            + "]"
        )
    ids = list(selection)
    if not ids:
        raise ValueError("no instances selected; nothing to do")

    malformed = [value for value in ids if not _api.is_instance_id(value)]
    if malformed:
        shown = ", ".join(repr(value) for value in malformed[:10])
        more = f" and {len(malformed) - 10} more" if len(malformed) > 10 else ""
        raise ValueError(f"not instance ids (UUIDs): {shown}{more}")

    seen: set[str] = set()
    twice: list[str] = []
    for value in ids:
        key = str(value).lower()
        if key in seen and key not in twice:
            twice.append(key)
        seen.add(key)
    if twice:
        raise ValueError(f"instance ids given more than once: {', '.join(twice)}")
    # The service's ids are lowercase; an id typed or pasted in capitals is
    # the same instance.
    return [str(value).lower() for value in ids]
