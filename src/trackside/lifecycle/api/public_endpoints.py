"""Public endpoints: paths of a job that the gateway serves without a token, once staff approve
(`trackside.lifecycle.public_endpoints` does the work)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from trackside.auth.subjects import Caller
from trackside.lifecycle import public_endpoints
from trackside.lifecycle.api.deps import get_caller, get_context
from trackside.lifecycle.wiring import LifecycleContext

router = APIRouter()


class PublicEndpoint(BaseModel):
    id: str
    job_name: str
    job_version: str
    endpoint: str
    active: bool


@router.get("/job/{name}/{version}/public-endpoints", response_model=list[PublicEndpoint])
def job_public_endpoints(
    name: str, version: str, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> list[dict[str, Any]]:
    return public_endpoints.active_of_job(context.db, caller, name, version)


@router.get("/public-endpoints", response_model=list[PublicEndpoint])
def all_requests(
    caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> list[dict[str, Any]]:
    return public_endpoints.all_requests(context.db, caller)


@router.post("/public-endpoints/{request_id}/approve", response_model=PublicEndpoint)
def approve(
    request_id: str, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> dict[str, Any]:
    return public_endpoints.switch(context.db, caller, request_id, True)


@router.post("/public-endpoints/{request_id}/withdraw", response_model=PublicEndpoint)
def withdraw(
    request_id: str, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> dict[str, Any]:
    return public_endpoints.switch(context.db, caller, request_id, False)
