"""The gateway's single question per (job, version, path, token): may this call pass, and where to?

This is the one place that decides it; the gateway caches the answer for `gateway_cache_ttl`
seconds, which is therefore how long a revoked token may keep working. The rules (docs/auth.md,
"Gateway calls"):

- `/health`, `/live`, `/ready` and the job's approved public endpoints (a path prefix, matched
  on whole segments) are open to anyone;
- everything else needs `call_job` on that job and that endpoint: 401 without a live token,
  403 with one that lacks the permission, 404 for an unknown job.
- Paths with dot segments are refused (403) before any rule: the gateway collapses slashes and
  refuses them too, this is the second lock on the same door.

Maintenance mode does not stop calls.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from trackside.auth.permissions import normalize_endpoint
from trackside.auth.scopes import Scope
from trackside.auth.service import AuthService
from trackside.auth.subjects import Caller
from trackside.domain import JobDto, JobStatus
from trackside.errors import Forbidden, NotFound, Unauthorized
from trackside.lifecycle import job_versions
from trackside.lifecycle.access import Grants
from trackside.store.auth_models import PublicEndpointRequest
from trackside.store.database import Database
from trackside.store.models import Job

OPEN_PATHS = frozenset({"/health", "/live", "/ready"})


def clean_path(path: str) -> str:
    """The endpoint a call reaches: leading slash, repeated slashes collapsed; dot segments refused."""
    segments = [s for s in path.split("/") if s]
    if any(s in (".", "..") or s.lower() in ("%2e", "%2e%2e", ".%2e", "%2e.") for s in segments):
        raise Forbidden(f"path {path!r}: dot segments are not allowed")
    if any("%2f" in s.lower() or "\\" in s for s in segments):
        raise Forbidden(f"path {path!r}: encoded slashes are not allowed")
    return normalize_endpoint("/".join(segments))


def is_public(session: Session, job: Job, endpoint: str) -> bool:
    if endpoint in OPEN_PATHS:
        return True
    prefixes = session.scalars(
        select(PublicEndpointRequest.endpoint).where(
            PublicEndpointRequest.job_id == job.id, PublicEndpointRequest.active.is_(True)
        )
    )
    for prefix in prefixes:
        base = normalize_endpoint(prefix)
        if endpoint == base or endpoint.startswith(base.rstrip("/") + "/"):
            return True
    return False


def decide(
    db: Database, auth: AuthService, name: str, version: str, path: str, token: str | None, pub_url: str
) -> tuple[JobDto, Caller | None]:
    """The job the call goes to and who makes it (None on an open path without a live token), or the
    refusal: 403 for a dot segment, 401 without a live token, 404 for an unknown job, 403 without
    `call_job`. A lost job has no replicas to route to."""
    endpoint = clean_path(path)
    caller: Caller | None = None
    with db.session() as session:
        job = job_versions.find_job(session, name, version)
        public = job is not None and is_public(session, job, endpoint)
        if not public:
            caller = auth.resolve(token)  # 401 without a live token
        elif token is not None:
            try:  # open paths pass whatever the token; it only names the caller
                caller = auth.resolve(token)
            except Unauthorized:
                caller = None
        if job is None:
            raise NotFound(f"job {name} version {version} not found")
        if not public:
            assert caller is not None
            if not Grants.of(session, caller).allows_job(Scope.CALL_JOB, job, endpoint):
                raise Forbidden(
                    f"{caller.display} has no call_job permission on job {job.name} {job.version} endpoint {endpoint}"
                )
        dto = job_versions.job_to_dto(job, pub_url)
    if dto.status == JobStatus.LOST.value:
        dto.replica_internal_names = []
    return dto, caller
