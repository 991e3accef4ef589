"""`/settings/maintenance`: staff switch maintenance mode on and off; anyone logged in may look."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from trackside.auth.subjects import Caller
from trackside.lifecycle import maintenance
from trackside.lifecycle.api.deps import get_caller, get_context
from trackside.lifecycle.wiring import LifecycleContext

router = APIRouter()


class MaintenanceSwitch(BaseModel):
    enabled: bool


class MaintenanceMode(BaseModel):
    maintenance_mode: bool


@router.get("/settings/maintenance", response_model=MaintenanceMode)
def get_maintenance(
    _caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> dict[str, Any]:
    return {"maintenance_mode": maintenance.mode(context.db)}


@router.put("/settings/maintenance", response_model=MaintenanceMode)
def set_maintenance(
    body: MaintenanceSwitch, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> dict[str, Any]:
    maintenance.switch(context.db, caller, body.enabled)
    return {"maintenance_mode": body.enabled}
