"""`POST /job/all/reconcile`: reprovision every lost job, as Racetrack's; refused in maintenance mode.

(A single version's `POST /job/{n}/{v}/reprovision` is with the other job routes, in jobs.py.)"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from trackside.auth.scopes import Scope
from trackside.auth.subjects import Caller
from trackside.lifecycle import maintenance
from trackside.lifecycle.access import require_scope_in
from trackside.lifecycle.api.deps import get_caller, get_context
from trackside.lifecycle.reconcile import reconcile as reconcile_lost_jobs
from trackside.lifecycle.wiring import LifecycleContext

router = APIRouter()


class Started(BaseModel):
    id: str


class Reconciled(BaseModel):
    started: dict[str, str]  # "name version" -> deployment id
    failed: dict[str, str]  # "name version" -> why it could not start


@router.post("/job/all/reconcile", status_code=202)
def reconcile(caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)) -> Reconciled:
    require_scope_in(context.db, caller, Scope.CALL_ADMIN_API)
    maintenance.refuse_changes(context.db, "reconciling jobs")
    started, failed = reconcile_lost_jobs(context.deployer, caller.username)
    return Reconciled(started=started, failed=failed)
