"""`/audit`: the audit log, filtered by job, by family, and by "related to me" (Racetrack's routes)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from trackside.auth.subjects import Caller
from trackside.lifecycle import audit
from trackside.lifecycle.api.deps import get_caller, get_context
from trackside.lifecycle.wiring import LifecycleContext

router = APIRouter()

LIMIT = 100


class AuditEvent(BaseModel):
    id: str
    version: int
    timestamp: str = Field(description="ISO 8601")
    event_type: str
    properties: dict[str, Any]
    username_executor: str | None
    username_subject: str | None
    job_name: str | None
    job_version: str | None
    explanation: str
    time_ago: str


class Activity(BaseModel):
    filter_job_name: str | None
    filter_job_version: str | None
    filter_related_to_me: bool
    events: list[AuditEvent]


@router.get("/audit/activity", response_model=Activity)
def activity(
    job_name: str | None = Query(None),
    job_version: str | None = Query(None),
    related_to_me: bool = Query(False),
    limit: int = Query(LIMIT, ge=1, le=1000),
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, Any]:
    """Events filtered by family (`job_name`), job (`job_name` + `job_version`) and the caller's involvement."""
    events = audit.events_for_user(
        context.db,
        caller,
        job_name=job_name or None,
        job_version=job_version or None,
        related_only=related_to_me,
        limit=limit,
    )
    return {
        "filter_job_name": job_name,
        "filter_job_version": job_version,
        "filter_related_to_me": related_to_me,
        "events": events,
    }


@router.get("/audit/user_events", response_model=list[AuditEvent])
@router.get("/audit/user_events/job/{job_name}", response_model=list[AuditEvent])
@router.get("/audit/user_events/job/{job_name}/{job_version}", response_model=list[AuditEvent])
def user_events(
    job_name: str | None = None,
    job_version: str | None = None,
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> list[dict[str, Any]]:
    return audit.events_for_user(
        context.db, caller, job_name=job_name, job_version=job_version, related_only=True, limit=LIMIT
    )


@router.get("/audit/events", response_model=list[AuditEvent])
@router.get("/audit/events/job/{job_name}", response_model=list[AuditEvent])
@router.get("/audit/events/job/{job_name}/{job_version}", response_model=list[AuditEvent])
def all_events(
    job_name: str | None = None,
    job_version: str | None = None,
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> list[dict[str, Any]]:
    return audit.events(context.db, job_name=job_name, job_version=job_version, limit=LIMIT)
