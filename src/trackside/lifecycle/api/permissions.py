"""`/permissions` (staff: list, grant, revoke any subject's permissions) and `/job/graph` (who may
do what to which family, as a graph; Racetrack's route, with users and every grant's scopes)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from trackside.auth.subjects import Caller
from trackside.lifecycle import permission_views
from trackside.lifecycle.api.bounds import RowId
from trackside.lifecycle.api.deps import get_caller, get_context
from trackside.lifecycle.wiring import LifecycleContext

router = APIRouter()


class PermissionModel(BaseModel):
    id: int
    subject_type: str
    subject: str
    subject_name: str
    scope: str
    job_family: str | None
    job_version: str | None
    endpoint: str | None


class NewPermission(BaseModel):
    subject_type: str = Field(description="user, esc or job_family")
    subject: str = Field(min_length=1, max_length=256, description="username, ESC id or name, or family name")
    scope: str
    job_family: str | None = Field(default=None, description="empty: every family")
    job_version: str | None = None
    endpoint: str | None = Field(default=None, max_length=512)


class PermissionGranted(BaseModel):
    granted: bool = Field(description="false: the grant existed already")
    subject: str
    scope: str
    job_family: str | None


class PermissionRevoked(BaseModel):
    revoked: int


class GraphNode(BaseModel):
    id: str
    type: str
    title: str
    subtitle: str


class GraphEdge(BaseModel):
    from_id: str
    to_id: str
    scopes: list[str]


class Graph(BaseModel):
    nodes: list[GraphNode]
    edges: list[GraphEdge]


@router.get("/permissions")
def list_permissions(
    caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> list[PermissionModel]:
    return [PermissionModel.model_validate(p) for p in permission_views.list_grants(context.db, caller)]


@router.post("/permissions", status_code=201, response_model=PermissionGranted)
def grant_permission(
    body: NewPermission, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> dict[str, Any]:
    return permission_views.grant(
        context.db,
        caller,
        body.subject_type,
        body.subject,
        body.scope,
        body.job_family or None,
        body.job_version or None,
        body.endpoint or None,
    )


@router.delete("/permissions/{permission_id}", response_model=PermissionRevoked)
def revoke_permission(
    permission_id: RowId, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> dict[str, Any]:
    return permission_views.revoke(context.db, caller, permission_id)


@router.get("/job/graph")
def permission_graph(caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)) -> Graph:
    return Graph.model_validate(permission_views.graph(context.db, caller))
