"""The request being served, as job code sees it (Racetrack's `request_context` and `request_extra`).

The runtime sets `request_context` around every call into job code (perform, auxiliary endpoints,
webviews) and puts it and `request_extra` on the job instance as `entrypoint.request_context` and
`entrypoint.request_extra`, where Racetrack's runner puts them. `request_extra` answers like a
ContextVar holding a fresh dict per request, but the dict lives on the request and is made only
when job code asks for it, so calls that never use it pay nothing for it. The request is a `JobRequest`: a thin
read-only view of the runtime's parsed request whose `headers` answer any capitalisation
(`headers.get('X-Caller-Name')`), like the Starlette request Racetrack's jobs get.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any
from urllib.parse import parse_qsl

# The current request (a JobRequest) while job code runs for one; None outside requests.
request_context: ContextVar[Any | None] = ContextVar("request_context", default=None)


# Headers that job-to-job calls carry forward from the current request.
FORWARDED_HEADERS = ("x-request-tracing-id", "x-caller-name")


class Headers(Mapping[str, str]):
    """Request headers, looked up case-insensitively; names are listed lower-case."""

    __slots__ = ("_raw",)

    def __init__(self, raw: dict[str, str]) -> None:
        self._raw = raw  # the parser's dict: names already lower-case

    def __getitem__(self, name: str) -> str:
        return self._raw[name.lower()]

    def get(self, name: str, default: Any = None) -> Any:
        return self._raw.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def getlist(self, name: str) -> list[str]:
        """Every value of a header (repeated headers arrive joined by ', ')."""
        value = self._raw.get(name.lower())
        return [] if value is None else [part.strip() for part in value.split(",")]

    def __repr__(self) -> str:
        return f"Headers({self._raw!r})"


class URL(str):
    """The request target as a string, with `.path` and `.query` as on Starlette's URL."""

    __slots__ = ()

    @property
    def path(self) -> str:
        return self.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.split("?", 1)[1] if "?" in self else ""


class JobRequest:
    """What `request_context.get()` returns inside job code: the current request, read-only."""

    __slots__ = ("_req", "_extra")  # made for every call into job code: nothing computed up front

    def __init__(self, req: Any) -> None:
        self._req = req

    @property
    def headers(self) -> Headers:
        return Headers(self._req.headers)

    @property
    def method(self) -> str:
        return str(self._req.method)

    @property
    def url(self) -> URL:
        return URL(self._req.target)

    @property
    def path(self) -> str:
        return str(self._req.path)

    @property
    def query_params(self) -> dict[str, str]:
        return dict(parse_qsl(self._req.query, keep_blank_values=True))

    @property
    def cookies(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for part in self.headers.get("cookie", "").split(";"):
            name, sep, value = part.strip().partition("=")
            if sep:
                found[name] = value
        return found

    @property
    def body(self) -> bytes:
        return bytes(self._req.body)

    def __repr__(self) -> str:
        return f"<JobRequest {self.method} {self._req.target}>"


def tracing_header_name() -> str:
    """The header holding the tracing id (REQUEST_TRACING_HEADER, as in Racetrack)."""
    return os.environ.get("REQUEST_TRACING_HEADER", "") or "X-Request-Tracing-Id"


def caller_header_name() -> str:
    """The header holding the caller's name (CALLER_NAME_HEADER, as in Racetrack)."""
    return os.environ.get("CALLER_NAME_HEADER", "") or "X-Caller-Name"


def current_headers() -> dict[str, str]:
    """The current request's tracing and caller headers, to forward on a job-to-job call."""
    req = request_context.get()
    if req is None:
        return {}
    headers = req.headers
    found: dict[str, str] = {}
    for name in (*FORWARDED_HEADERS, tracing_header_name(), caller_header_name()):
        value = headers.get(name)
        if value is not None:
            found[name.lower()] = value
    return found


_UNSET: Any = object()


class RequestExtra:
    """Racetrack's `request_extra`: `.get()` is the current request's own dict, made on first use.

    It offers a ContextVar's `get`, `set` and `reset`; outside a request `get()` raises LookupError
    (or returns the default given), as Racetrack's ContextVar without a default does.
    """

    name = "request_extra"

    def get(self, *default: Any) -> Any:
        req = request_context.get()
        if req is None:
            if default:
                return default[0]
            raise LookupError("request_extra: no request is being served")
        try:
            return req._extra
        except AttributeError:
            extra: dict[str, Any] = {}
            req._extra = extra
            return extra

    def set(self, value: Any) -> tuple[Any, Any]:
        req = request_context.get()
        if req is None:
            raise LookupError("request_extra: no request is being served")
        token = (req, getattr(req, "_extra", _UNSET))
        req._extra = value
        return token

    def reset(self, token: tuple[Any, Any]) -> None:
        req, old = token
        if old is _UNSET:
            del req._extra
        else:
            req._extra = old

    def __repr__(self) -> str:
        return "<RequestExtra: a dict per request>"


# A dict per request, for job code to keep per-request values in (Racetrack's `request_extra`).
request_extra = RequestExtra()
