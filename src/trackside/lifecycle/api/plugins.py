"""`/plugin`: install, uninstall, list, download and configure plugins, and reach their hooks.

Racetrack's endpoints and shapes (docs/architecture.md, "Compatibility contracts"), so `racetrack plugin ...` works
against us.
After each change the lifecycle reloads its own engine at once; other components notice the
`last-change.txt` rewrite within a second or so.
"""

from __future__ import annotations

from typing import Any

import yaml
from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel

from trackside.auth.subjects import Caller
from trackside.errors import InvalidInput, Unavailable
from trackside.lifecycle import audit, job_versions
from trackside.lifecycle.access import require_staff
from trackside.lifecycle.api.deps import get_caller, get_context
from trackside.lifecycle.audit import EventType
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
    store = context.plugins.store
    if store is None:
        raise Unavailable("no plugins directory is configured")
    return store


def _install(
    context: LifecycleContext, caller: Caller, data: bytes, filename: str | None, replace: bool
) -> dict[str, Any]:
    if not data:
        raise InvalidInput("plugin upload: the body is empty; send the plugin's zip bundle")
    manifest = _store(context).install(data, filename=filename, replace=replace)
    context.plugins.reload()
    audit.record_in(
        context.db,
        EventType.PLUGIN_INSTALLED,
        caller.username,
        plugin_name=manifest.name,
        plugin_version=manifest.version,
        replace=replace,
    )
    return manifest.to_api()


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
    by_job_type: dict[str, int] = {}
    by_target: dict[str, int] = {}
    with context.db.session() as session:
        for job in job_versions.list_jobs(session):
            manifest = yaml.safe_load(job.manifest) if job.manifest else {}
            jobtype = str((manifest or {}).get("jobtype") or "").split(":", 1)[0]
            key = f"{jobtype}:{job.job_type_version}"
            by_job_type[key] = by_job_type.get(key, 0) + 1
            by_target[job.infrastructure_target or ""] = by_target.get(job.infrastructure_target or "", 0) + 1
    engine = context.plugins
    job_types = {p.key: names for p, names in engine.job_types_by_plugin()}
    targets = {p.key: names for p, names in engine.targets_by_plugin()}
    tree = []
    for plugin in engine.plugins:
        tree.append(
            {
                **plugin.manifest.to_api(),
                "builtin": plugin.builtin,
                "job_types": [{"name": n, "active_jobs": by_job_type.get(n, 0)} for n in job_types.get(plugin.key, [])],
                "infrastructure_targets": [
                    {"name": n, "active_jobs": by_target.get(n, 0)} for n in targets.get(plugin.key, [])
                ],
            }
        )
    return tree


@router.delete("/plugin/all", response_model=PluginsDeleted)
def delete_all_plugins(
    caller: Caller = Depends(staff_only), context: LifecycleContext = Depends(get_context)
) -> dict[str, str]:
    removed = _store(context).list()
    _store(context).uninstall_all()
    context.plugins.reload()
    for plugin in removed:
        audit.record_in(
            context.db,
            EventType.PLUGIN_UNINSTALLED,
            caller.username,
            plugin_name=plugin.manifest.name,
            plugin_version=plugin.manifest.version,
        )
    return {"status": "deleted"}


@router.delete("/plugin/{name}/{version}", response_model=PluginStatus)
def delete_plugin(
    name: str, version: str, caller: Caller = Depends(staff_only), context: LifecycleContext = Depends(get_context)
) -> dict[str, str]:
    _store(context).uninstall(name, version)
    context.plugins.reload()
    audit.record_in(context.db, EventType.PLUGIN_UNINSTALLED, caller.username, plugin_name=name, plugin_version=version)
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
