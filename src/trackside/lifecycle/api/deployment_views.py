"""`/deployments`: recent deployments the caller may see (own, of readable jobs, all for staff), paged,
and one deployment with its build log, for following a deploy's phases."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from trackside.auth.subjects import Caller
from trackside.lifecycle import deployment_views
from trackside.lifecycle.api.bounds import MAX_TAIL, Offset
from trackside.lifecycle.api.deps import get_caller, get_context
from trackside.lifecycle.wiring import LifecycleContext

router = APIRouter()


class DeploymentSummary(BaseModel):
    id: str
    status: str
    phase: str | None
    kind: str
    job_name: str
    job_version: str
    deployed_by: str | None
    infrastructure_target: str | None
    error: str | None
    create_time: int | None
    update_time: int | None


class DeploymentDetail(DeploymentSummary):
    manifest_yaml: str
    image_name: str | None
    warnings: str | None
    build_logs: str


class DeploymentPage(BaseModel):
    offset: int
    limit: int
    has_more: bool
    items: list[DeploymentSummary]


@router.get("/deployments")
def deployments(
    offset: Offset = 0,
    limit: int = Query(50, ge=1, le=500),
    mine: bool = Query(False, description="only the caller's own deployments"),
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> DeploymentPage:
    return DeploymentPage.model_validate(deployment_views.list_visible(context.db, caller, offset, limit, mine))


@router.get("/deployments/{deployment_id}")
def deployment(
    deployment_id: str,
    tail: Annotated[int, Query(ge=0, le=MAX_TAIL, description="last lines of the build log; 0: all")] = 0,
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> DeploymentDetail:
    return DeploymentDetail.model_validate(deployment_views.get_visible(context.db, caller, deployment_id, tail))
