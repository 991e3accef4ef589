"""`/auth/can-call-job`: the gateway's single question per (job, version, path, token), answered by
`lifecycle/call_access.py` (the rules are there)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from trackside.lifecycle import call_access
from trackside.lifecycle.api.deps import caller_token, get_auth, get_context
from trackside.lifecycle.wiring import LifecycleContext

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


@router.get("/auth/can-call-job/{name}/{version}/{path:path}", response_model=CallDecision)
@router.get("/auth/can-call-job/{name}/{version}", response_model=CallDecision)
def can_call_job(
    name: str, version: str, request: Request, path: str = "", context: LifecycleContext = Depends(get_context)
) -> dict[str, Any]:
    token = caller_token(request)
    dto, caller = call_access.decide(
        context.db, get_auth(request), name, version, path, token, context.settings.pub_url
    )
    target = context.target(dto.infrastructure_target)
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
