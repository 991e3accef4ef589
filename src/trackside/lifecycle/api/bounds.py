"""Bounds on the numbers, times and strings the lifecycle API accepts (issue 9, item 8).

Every number a client sends is checked here, at the boundary, so a value no column, `datetime` or
list can hold answers 400 naming the field instead of reaching the store or the standard library
(`datetime.fromtimestamp(2**70)` raises `OverflowError`, a 64-bit OFFSET overflows SQLite).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path, Query
from pydantic import Field

# The store's integer columns are 32-bit on PostgreSQL.
MAX_INT32 = 2**31 - 1
# The last second of 9998: far enough for any expiry, and a year short of what `datetime` can hold,
# so adding a day or a time zone to it cannot overflow either.
MAX_UNIX_TIME = int(datetime(9998, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())
# How deep a page may start, and how many log lines one answer may carry.
MAX_OFFSET = 10_000_000
MAX_TAIL = 1_000_000

UnixTime = Annotated[int, Field(ge=0, le=MAX_UNIX_TIME, description="unix seconds")]
Count = Annotated[int, Field(ge=0, le=MAX_INT32)]
Seconds = Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)]

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
Tail = Annotated[int, Query(ge=0, le=MAX_TAIL)]
RowId = Annotated[int, Path(ge=1, le=MAX_INT32)]
