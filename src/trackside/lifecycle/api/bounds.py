"""Bounds on the numbers, times and strings the lifecycle API accepts (issue 9, item 8).

Every number a client sends is checked here, at the boundary, so a value no column, `datetime` or
list can hold answers 400 naming the field instead of reaching the store or the standard library
(`datetime.fromtimestamp(2**70)` raises `OverflowError`, a 64-bit OFFSET overflows SQLite).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path, Query, Request
from pydantic import Field

from trackside.errors import InvalidInput

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


# A NUL character in JSON: `\u0000` after an even number of backslashes (an odd one escapes the `\`).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


async def refuse_nul_characters(request: Request) -> None:
    """No text a client sends may hold a NUL character: PostgreSQL's text columns cannot store one, so
    it would otherwise reach the store and fail there. Checks path and query parameters and JSON
    bodies, for every route (a router-level dependency)."""
    for name, value in request.path_params.items():
        if "\x00" in str(value):
            raise InvalidInput(f"{name}: must not contain a NUL character")
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            raise InvalidInput(f"{name.replace(chr(0), '')}: must not contain a NUL character")
    if request.headers.get("content-type", "").split(";")[0].strip().lower().endswith("json"):
        body = await request.body()
        if b"\x00" in body or _JSON_NUL.search(body):
            raise InvalidInput("body: must not contain a NUL character")
