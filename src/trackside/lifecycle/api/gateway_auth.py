"""`/auth/can-call-job`: the gateway's single question per (job, version, path, token).

This is the one place that decides whether a call through the gateway may pass and where it
goes; the gateway caches the answer for `gateway_cache_ttl` seconds, which is therefore how long
a revoked token may keep working. The rules (docs/auth.md, "Gateway calls"):

- `/health`, `/live`, `/ready` and the job's approved public endpoints (a path prefix, matched
  on whole segments) are open to anyone;
- everything else needs `call_job` on that job and that endpoint: 401 without a live token,
  403 with one that lacks the permission, 404 for an unknown job.
- Paths with dot segments are refused (403) before any rule: the gateway collapses slashes and
  refuses them too, this is the second lock on the same door.

Maintenance mode does not stop calls.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from trackside.auth.permissions import normalize_endpoint
from trackside.auth.scopes import Scope
from trackside.auth.subjects import Caller
from trackside.domain import JobStatus
from trackside.errors import Forbidden, NotFound, Unauthorized
from trackside.lifecycle import job_versions
from trackside.lifecycle.access import Grants
from trackside.lifecycle.api.deps import caller_token, get_auth, get_context
from trackside.lifecycle.wiring import LifecycleContext
from trackside.store.auth_models import PublicEndpointRequest
from trackside.store.models import Job

router = APIRouter()


class CalledJob(BaseModel):
    name: str
    version: str
    status: str
    internal_name: str | None
    replica_internal_names: list[str]
    error: str | None
    forward_caller_token: bool


class CallDecision(BaseModel):
    """The gateway's answer: where the call goes, and who makes it (None on an open path, no token)."""

    job: CalledJob
    caller: str | None
    remote_gateway_url: str | None
    remote_gateway_token: str | None


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


@router.get("/auth/can-call-job/{name}/{version}/{path:path}", response_model=CallDecision)
@router.get("/auth/can-call-job/{name}/{version}", response_model=CallDecision)
def can_call_job(
    name: str, version: str, request: Request, path: str = "", context: LifecycleContext = Depends(get_context)
) -> dict[str, Any]:
    endpoint = clean_path(path)
    caller: Caller | None = None
    with context.db.session() as session:
        job = job_versions.find_job(session, name, version)
        public = job is not None and is_public(session, job, endpoint)
        token = caller_token(request)
        if not public:
            caller = get_auth(request).resolve(token)  # 401 without a live token
        elif token is not None:
            try:  # open paths pass whatever the token; it only names the caller
                caller = get_auth(request).resolve(token)
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
        dto = job_versions.job_to_dto(job, context.settings.pub_url)
    target = context.target(dto.infrastructure_target)
    if dto.status == JobStatus.LOST.value:
        dto.replica_internal_names = []
    return {
        "job": {
            "name": dto.name,
            "version": dto.version,
            "status": dto.status,
            "internal_name": dto.internal_name,
            "replica_internal_names": dto.replica_internal_names,
            "error": dto.error,
            # The job's manifest opt-in to receive the caller's token (docs/security.md).
            "forward_caller_token": bool(dto.manifest and dto.manifest.get("forward_caller_token") is True),
        },
        "caller": caller.display if caller is not None else None,
        "remote_gateway_url": target.remote_gateway_url if target else None,
        "remote_gateway_token": target.remote_gateway_token if target else None,
    }
