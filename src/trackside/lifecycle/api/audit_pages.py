"""`/audit/page`: the audit log one page at a time, filtered, showing only what the caller may see."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from trackside.auth.subjects import Caller
from trackside.lifecycle import audit_views
from trackside.lifecycle.api.audit import AuditEvent
from trackside.lifecycle.api.bounds import Offset
from trackside.lifecycle.api.deps import get_caller, get_context
from trackside.lifecycle.wiring import LifecycleContext

router = APIRouter()


class AuditPage(BaseModel):
    offset: int
    limit: int
    has_more: bool
    events: list[AuditEvent]


@router.get("/audit/page")
def audit_page(
    job_name: str | None = Query(None, description="a job family"),
    job_version: str | None = Query(None),
    related_to_me: bool = Query(False),
    offset: Offset = 0,
    limit: int = Query(50, ge=1, le=500),
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> AuditPage:
    data = audit_views.page(
        context.db,
        caller,
        job_name=job_name or None,
        job_version=job_version or None,
        related_to_me=related_to_me,
        offset=offset,
        limit=limit,
    )
    return AuditPage.model_validate(data)
