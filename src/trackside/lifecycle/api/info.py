"""`/info`, and the probes of the lifecycle itself."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from trackside.lifecycle.api.deps import get_context
from trackside.lifecycle.wiring import LifecycleContext

router = APIRouter()
probes = APIRouter()


def trackside_version() -> str:
    try:
        return version("trackside")
    except PackageNotFoundError:
        return "unknown"


@router.get("/info")
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


@probes.get("/live")
def live() -> dict[str, Any]:
    return {"live": True}


@probes.get("/ready")
def ready() -> dict[str, Any]:
    return {"ready": True}


@probes.get("/health")
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
