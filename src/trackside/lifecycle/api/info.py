"""`/info`, and the probes of the lifecycle itself."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from trackside.lifecycle.api.deps import get_context
from trackside.lifecycle.wiring import LifecycleContext

router = APIRouter()
probes = APIRouter()


class Info(BaseModel):
    """`racetrack` reads `auth_required` (to know whether it needs a token) and `external_pub_url`."""

    service: str
    git_version: str
    docker_tag: str
    auth_required: bool
    external_pub_url: str | None
    lifecycle_url: str | None
    grafana_url: str | None


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


class Health(BaseModel):
    service: str
    version: str
    live: bool
    ready: bool
    database_connected: bool
    status: str


def trackside_version() -> str:
    try:
        return version("trackside")
    except PackageNotFoundError:
        return "unknown"


@router.get("/info", response_model=Info)
def info(context: LifecycleContext = Depends(get_context)) -> dict[str, Any]:
    settings = context.settings
    return {
        "service": "lifecycle",
        "git_version": trackside_version(),
        "docker_tag": trackside_version(),
        "auth_required": True,
        "external_pub_url": settings.pub_url,
        "lifecycle_url": settings.lifecycle_url,
        "grafana_url": None,
    }


@probes.get("/live", response_model=Live)
def live() -> dict[str, Any]:
    return {"live": True}


@probes.get("/ready", response_model=Ready)
def ready() -> dict[str, Any]:
    return {"ready": True}


@probes.get("/health", response_model=Health, responses={500: {"model": Health}})
def health(context: LifecycleContext = Depends(get_context)) -> JSONResponse:
    connected = context.db.is_connected()
    body = {
        "service": "lifecycle",
        "version": trackside_version(),
        "live": True,
        "ready": connected,
        "database_connected": connected,
        "status": "pass" if connected else "fail",
    }
    return JSONResponse(body, status_code=200 if connected else 500)
