"""Keyset paging: fetch ``limit + 1`` rows after the cursor; the extra row says "more"."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

Row = TypeVar("Row")


def page(
    rows: Sequence[Row], limit: int, cursor_of: Callable[[Row], str]
) -> tuple[Sequence[Row], str | None]:
    """The first ``limit`` of ``rows`` (queried with ``LIMIT limit + 1``) and the cursor of
    the next page (the last row's key), or None when this is the last page."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, cursor_of(rows[-1])
