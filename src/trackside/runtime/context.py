"""The request being served, visible to user code (Racetrack's `request_context`)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

# Holds the runtime's Request (method, path, query, headers, body) while user code runs.
request_context: ContextVar[Any | None] = ContextVar("request_context", default=None)

# Headers that job-to-job calls carry forward from the current request.
FORWARDED_HEADERS = ("x-request-tracing-id", "x-caller-name")


def current_headers() -> dict[str, str]:
    req = request_context.get()
    if req is None:
        return {}
    headers: dict[str, str] = req.headers
    return {name: headers[name] for name in FORWARDED_HEADERS if name in headers}
