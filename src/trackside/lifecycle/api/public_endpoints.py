"""Public endpoints: paths of a job that the gateway serves without a token, once staff approve.

A job asks for them in its manifest (`public_endpoints`); each deploy records the requests
(inactive); staff list and approve (or withdraw) them here.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy import select

from trackside.auth.scopes import Scope
from trackside.auth.subjects import Caller
from trackside.errors import NotFound
from trackside.lifecycle import audit, registry
from trackside.lifecycle.access import require_job, require_staff
from trackside.lifecycle.api.deps import get_caller, get_context
from trackside.lifecycle.audit import EventType
from trackside.lifecycle.context import LifecycleContext
from trackside.store.auth_models import PublicEndpointRequest
from trackside.store.models import Job

router = APIRouter()


class PublicEndpoint(BaseModel):
    id: str
    job_name: str
    job_version: str
    endpoint: str
    active: bool


def _to_api(request: PublicEndpointRequest, job: Job) -> dict[str, Any]:
    return {
        "id": request.id,
        "job_name": job.name,
        "job_version": job.version,
        "endpoint": request.endpoint,
        "active": request.active,
    }


@router.get("/job/{name}/{version}/public-endpoints", response_model=list[PublicEndpoint])
def job_public_endpoints(
    name: str, version: str, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> list[dict[str, Any]]:
    with context.db.session() as session:
        job = registry.get_job(session, name, version)
        require_job(session, caller, Scope.READ_JOB, job)
        rows = session.scalars(
            select(PublicEndpointRequest).where(
                PublicEndpointRequest.job_id == job.id, PublicEndpointRequest.active.is_(True)
            )
        )
        return [_to_api(r, job) for r in rows]


@router.get("/public-endpoints", response_model=list[PublicEndpoint])
def all_requests(
    caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> list[dict[str, Any]]:
    require_staff(caller)
    with context.db.session() as session:
        rows = session.execute(
            select(PublicEndpointRequest, Job)
            .join(Job, Job.id == PublicEndpointRequest.job_id)
            .order_by(Job.name, Job.version, PublicEndpointRequest.endpoint)
        ).all()
        return [_to_api(r, j) for r, j in rows]


def _switch(context: LifecycleContext, caller: Caller, request_id: str, active: bool) -> dict[str, Any]:
    require_staff(caller)
    with context.db.session() as session:
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


@router.post("/public-endpoints/{request_id}/approve", response_model=PublicEndpoint)
def approve(
    request_id: str, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> dict[str, Any]:
    return _switch(context, caller, request_id, True)


@router.post("/public-endpoints/{request_id}/withdraw", response_model=PublicEndpoint)
def withdraw(
    request_id: str, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> dict[str, Any]:
    return _switch(context, caller, request_id, False)
