"""One page of the rows a caller may see, when which rows they may see is decided in Python.

The query is read in batches until the page (and one more row, to tell whether another page follows)
is full, so a caller who may see few rows of many pays for the rows read, never for the whole table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

Row = TypeVar("Row")
SCAN = 500


def visible_page(
    session: Session,
    query: Select[Row],
    visible: Callable[[Row], bool],
    to_api: Callable[[Row], dict[str, Any]],
    offset: int,
    limit: int,
) -> tuple[list[dict[str, Any]], bool]:
    """The page's rows in their API shape, in the query's order, and whether more follow."""
    found: list[dict[str, Any]] = []
    skipped = start = 0
    while len(found) <= limit:
        batch = list(session.scalars(query.offset(start).limit(SCAN)))
        if not batch:
            break
        start += len(batch)
        for row in batch:
            if not visible(row):
                continue
            if skipped < offset:
                skipped += 1
                continue
            found.append(to_api(row))
            if len(found) > limit:
                break
    return found[:limit], len(found) > limit
