"""`POST /job/{n}/{v}/reprovision` (start a job again from its current build) and `POST /job/all/reconcile`
(reprovision every lost job), as Racetrack's; both are refused in maintenance mode."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from trackside.auth.scopes import Scope
from trackside.auth.subjects import Caller
from trackside.errors import TracksideError
from trackside.lifecycle import maintenance, registry
from trackside.lifecycle.access import require_job, require_scope
from trackside.lifecycle.api.deps import get_caller, get_context
from trackside.lifecycle.context import LifecycleContext
from trackside.lifecycle.reprovision import lost_jobs, start_reprovision

router = APIRouter()


class Started(BaseModel):
    id: str


class Reconciled(BaseModel):
    started: dict[str, str]  # "name version" -> deployment id
    failed: dict[str, str]  # "name version" -> why it could not start


@router.post("/job/{name}/{version}/reprovision", status_code=202)
def reprovision(
    name: str, version: str, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> Started:
    with context.db.session() as session:
        require_job(session, caller, Scope.DEPLOY_JOB, registry.get_job(session, name, version))
    maintenance.refuse_changes(context.db, "reprovisioning jobs")
    return Started(id=start_reprovision(context.deployer, name, version, caller.username))


@router.post("/job/all/reconcile", status_code=202)
def reconcile(caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)) -> Reconciled:
    with context.db.session() as session:
        require_scope(session, caller, Scope.CALL_ADMIN_API)
    maintenance.refuse_changes(context.db, "reconciling jobs")
    started: dict[str, str] = {}
    failed: dict[str, str] = {}
    for name, version in lost_jobs(context.deployer):
        try:
            started[f"{name} {version}"] = start_reprovision(context.deployer, name, version, caller.username)
        except TracksideError as exc:
            failed[f"{name} {version}"] = exc.message
    return Reconciled(started=started, failed=failed)
