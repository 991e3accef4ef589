"""`/plugin`: install, uninstall, list, download and configure plugins, and reach their hooks.

Racetrack's endpoints and shapes (docs/architecture.md, "Compatibility contracts"), so `racetrack plugin ...` works
against us.
After each change the lifecycle reloads its own engine at once; other components notice the
`last-change.txt` rewrite within a second or so.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel

from trackside.auth.subjects import Caller
from trackside.errors import InvalidInput
from trackside.lifecycle import plugin_admin
from trackside.lifecycle.access import require_staff
from trackside.lifecycle.api.deps import get_caller, get_context
from trackside.lifecycle.wiring import LifecycleContext
from trackside.plugins.manifest import PluginManifest
from trackside.plugins.store import PluginStore

router = APIRouter()


def staff_only(caller: Caller = Depends(get_caller)) -> Caller:
    """AUTH: the one place the staff-only plugin endpoints get their check (Racetrack: staff)."""
    require_staff(caller)
    return caller


STAFF = [Depends(staff_only)]


class PluginPart(BaseModel):
    name: str
    active_jobs: int


class PluginTreeItem(BaseModel):
    """A plugin's manifest (as `GET /plugin` lists it) with what it brings and how many jobs use each."""

    name: str
    version: str
    url: str | None
    priority: int
    category: str | None
    components: list[str]
    build_date: str | None
    builtin: bool
    job_types: list[PluginPart]
    infrastructure_targets: list[PluginPart]


class PluginStatus(BaseModel):
    name: str
    version: str
    status: str


class PluginsDeleted(BaseModel):
    status: str


def _store(context: LifecycleContext) -> PluginStore:
    return plugin_admin.bundles(context.plugins)


def _install(
    context: LifecycleContext, caller: Caller, data: bytes, filename: str | None, replace: bool
) -> dict[str, Any]:
    return plugin_admin.install(context.db, context.plugins, caller.username, data, filename, replace)


@router.get("/plugin", response_model=list[PluginManifest])
def list_plugins(context: LifecycleContext = Depends(get_context)) -> list[dict[str, Any]]:
    return [plugin.manifest.to_api() for plugin in _store(context).list()]


@router.post("/plugin/upload", response_model=PluginManifest)
def upload_plugin(
    file: UploadFile = File(...),
    replace: bool = Query(False),
    caller: Caller = Depends(staff_only),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, Any]:
    return _install(context, caller, file.file.read(), file.filename, replace)


@router.post("/plugin/upload/{filename}", response_model=PluginManifest)
async def upload_plugin_raw(
    filename: str,
    request: Request,
    replace: bool = Query(False),
    caller: Caller = Depends(staff_only),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, Any]:
    data = await request.body()
    return await run_in_threadpool(_install, context, caller, data, filename, replace)


@router.get("/plugin/job_type/versions")
def job_type_versions(context: LifecycleContext = Depends(get_context)) -> list[str]:
    return context.plugins.job_type_versions()


@router.get("/plugin/infrastructure_targets", response_model=dict[str, PluginManifest])
def infrastructure_targets(context: LifecycleContext = Depends(get_context)) -> dict[str, dict[str, Any]]:
    return {name: manifest.to_api() for name, manifest in context.plugins.infrastructure_target_plugins().items()}


@router.get("/plugin/tree", response_model=list[PluginTreeItem])
def plugin_tree(context: LifecycleContext = Depends(get_context)) -> list[dict[str, Any]]:
    """Every active plugin (built-ins included) with its job types and targets and their job counts."""
    return plugin_admin.tree(context.db, context.plugins)


@router.delete("/plugin/all", response_model=PluginsDeleted)
def delete_all_plugins(
    caller: Caller = Depends(staff_only), context: LifecycleContext = Depends(get_context)
) -> dict[str, str]:
    plugin_admin.uninstall_all(context.db, context.plugins, caller.username)
    return {"status": "deleted"}


@router.delete("/plugin/{name}/{version}", response_model=PluginStatus)
def delete_plugin(
    name: str, version: str, caller: Caller = Depends(staff_only), context: LifecycleContext = Depends(get_context)
) -> dict[str, str]:
    plugin_admin.uninstall(context.db, context.plugins, caller.username, name, version)
    return {"name": name, "version": version, "status": "deleted"}


@router.get("/plugin/{name}/{version}/download")
def download_plugin(name: str, version: str, context: LifecycleContext = Depends(get_context)) -> FileResponse:
    path = _store(context).read_bundle(name, version)
    return FileResponse(path, media_type="application/zip", filename=path.name)


class PluginConfig(BaseModel):
    config_data: str


@router.get("/plugin/{name}/{version}/config", dependencies=STAFF)
def read_plugin_config(name: str, version: str, context: LifecycleContext = Depends(get_context)) -> str:
    return _store(context).read_config(name, version)


@router.put("/plugin/{name}/{version}/config", dependencies=STAFF, response_model=PluginStatus)
def write_plugin_config(
    name: str, version: str, body: PluginConfig, context: LifecycleContext = Depends(get_context)
) -> dict[str, str]:
    _store(context).write_config(name, version, body.config_data)
    return {"name": name, "version": version, "status": "saved"}


@router.get("/plugin/{name}/docs")
def plugin_docs(name: str, context: LifecycleContext = Depends(get_context)) -> str | None:
    return context.plugins.markdown_docs(name)


@router.post("/plugin/{name}/run", dependencies=STAFF)
async def run_plugin_action(name: str, request: Request, context: LifecycleContext = Depends(get_context)) -> Any:
    params: dict[str, Any] = dict(request.query_params)
    raw = await request.body()
    if raw.strip():
        try:
            body = await request.json()
        except ValueError:
            raise InvalidInput(f"POST /plugin/{name}/run: the body must be a JSON object") from None
        if not isinstance(body, dict):
            raise InvalidInput(f"POST /plugin/{name}/run: the body must be a JSON object, got {type(body).__name__}")
        params.update(body)
    return await run_in_threadpool(context.plugins.run_action, name, params)
