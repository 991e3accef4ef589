"""`POST /job/{name}/{version}/move`: take a job version to another infrastructure target (Racetrack's move).

Synchronous, as Racetrack's: it answers once the job serves from the new target, with its JobDto.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from starlette.concurrency import run_in_threadpool

from trackside.auth.scopes import Scope
from trackside.auth.subjects import Caller
from trackside.errors import InvalidInput
from trackside.lifecycle import jobs, maintenance
from trackside.lifecycle.api.deps import get_caller, get_context
from trackside.lifecycle.api.models import JobDto
from trackside.lifecycle.wiring import LifecycleContext

router = APIRouter()


def _check(context: LifecycleContext, name: str, version: str, caller: Caller) -> None:
    jobs.readable(context.db, caller, name, version, context.settings.pub_url, Scope.DEPLOY_JOB)


@router.post("/job/{name}/{version}/move", response_model=JobDto)
async def move_job(
    name: str,
    version: str,
    body: Any = Body(None),
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput("move: the body must be an object with field 'infrastructure_target'")
    target = body.get("infrastructure_target")
    if not isinstance(target, str) or not target:
        raise InvalidInput("move: field 'infrastructure_target' is required (the name of a target)")
    await run_in_threadpool(_check, context, name, version, caller)
    maintenance.refuse_changes(context.db, "moving jobs")
    job = await run_in_threadpool(context.deployer.move_job, name, version, target, caller.username)
    return job.to_api()
