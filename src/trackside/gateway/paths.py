"""Parsing and vetting `/pub/job/{name}/{version}/{path}` targets.

The name and version decide which job a call reaches, so they must be plain tokens: no
percent-encoding (an encoded slash could smuggle another job's address past the auth check),
no backslashes, no dot segments. The remaining path goes to the already chosen job; dot segments
are refused there too and repeated slashes collapsed, so a job never sees a path that normalizes
to another job's prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

JOB_PREFIXES = ("/pub/job/", "/pub/fatman/")

# Job names are DNS-label-like; versions are SemVer, `latest` or `1.x` (all inside this alphabet).
_SEGMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*\Z")
_SLASHES_RE = re.compile(r"/{2,}")


class PathRefused(Exception):
    """A job path the gateway will not forward; `status_code` is 400 or 404."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


@dataclass(frozen=True, slots=True)
class JobTarget:
    name: str
    version: str
    # The job-relative path: "" or starting with "/", repeated slashes collapsed, query excluded.
    path: str


def is_job_path(path: str) -> bool:
    return path.startswith(JOB_PREFIXES) or path in ("/pub/job", "/pub/fatman")


def parse_job_path(path: str) -> JobTarget:
    """Split a raw (still percent-encoded) job path; PathRefused says what is wrong with it."""
    if path.startswith("/pub/job/"):
        remainder = path[9:]
    elif path.startswith("/pub/fatman/"):
        remainder = path[12:]
    else:
        raise PathRefused(404, f"job name and version missing in path {path!r}")
    name, _, after = remainder.partition("/")
    version, slash, rest = after.partition("/")
    if not name:
        raise PathRefused(404, f"job name missing in path {path!r}")
    if not version:
        raise PathRefused(404, f"job version missing in path {path!r}")
    if _SEGMENT_RE.match(name) is None:
        raise PathRefused(400, f"invalid job name {name!r} in path {path!r}")
    if _SEGMENT_RE.match(version) is None:
        raise PathRefused(400, f"invalid job version {version!r} in path {path!r}")
    if not slash:
        return JobTarget(name, version, "")
    rest = "/" + rest
    if "//" in rest:
        rest = _SLASHES_RE.sub("/", rest)
    if "." in rest or "%" in rest:
        for segment in rest.split("/"):
            plain = segment.replace("%2e", ".").replace("%2E", ".")
            if plain in (".", ".."):
                raise PathRefused(400, f"dot segment {segment!r} not allowed in path {path!r}")
    return JobTarget(name, version, rest)
