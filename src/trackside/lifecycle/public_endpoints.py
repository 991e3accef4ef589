"""Public endpoints: paths of a job that the gateway serves without a token, once staff approve.

A job asks for them in its manifest (`public_endpoints`); each deploy records the requests
(inactive); staff list and approve (or withdraw) them, audited.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from trackside.auth.scopes import Scope
from trackside.auth.subjects import Caller
from trackside.errors import NotFound
from trackside.lifecycle import audit, job_versions
from trackside.lifecycle.access import require_job, require_staff
from trackside.lifecycle.audit import EventType
from trackside.store.auth_models import PublicEndpointRequest
from trackside.store.database import Database
from trackside.store.models import Job


def _to_api(request: PublicEndpointRequest, job: Job) -> dict[str, Any]:
    return {
        "id": request.id,
        "job_name": job.name,
        "job_version": job.version,
        "endpoint": request.endpoint,
        "active": request.active,
    }


def active_of_job(db: Database, caller: Caller, name: str, version: str) -> list[dict[str, Any]]:
    """The approved public endpoints of a job the caller may read."""
    with db.session() as session:
        job = job_versions.get_job(session, name, version)
        require_job(session, caller, Scope.READ_JOB, job)
        rows = session.scalars(
            select(PublicEndpointRequest).where(
                PublicEndpointRequest.job_id == job.id, PublicEndpointRequest.active.is_(True)
            )
        )
        return [_to_api(r, job) for r in rows]


def all_requests(db: Database, caller: Caller) -> list[dict[str, Any]]:
    require_staff(caller)
    with db.session() as session:
        rows = session.execute(
            select(PublicEndpointRequest, Job)
            .join(Job, Job.id == PublicEndpointRequest.job_id)
            .order_by(Job.name, Job.version, PublicEndpointRequest.endpoint)
        ).all()
        return [_to_api(r, j) for r, j in rows]


def switch(db: Database, caller: Caller, request_id: str, active: bool) -> dict[str, Any]:
    """Approve (`active`) or withdraw a request."""
    require_staff(caller)
    with db.session() as session:
        row = session.get(PublicEndpointRequest, request_id)
        if row is None:
            raise NotFound(f"public endpoint request {request_id} not found")
        job = session.get(Job, row.job_id)
        assert job is not None
        row.active = active
        audit.record(
            session,
            EventType.PUBLIC_ENDPOINT_APPROVED if active else EventType.PERMISSION_REVOKED,
            caller.username,
            job_name=job.name,
            job_version=job.version,
            endpoint=row.endpoint,
            active=active,
        )
        return _to_api(row, job)
