"""`/job`: list, get (with version aliases), delete, redeploy, reprovision, runtime and build logs."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel

from trackside.auth.permissions import Resource
from trackside.auth.scopes import Scope
from trackside.auth.subjects import Caller
from trackside.domain import JobDto
from trackside.errors import InvalidInput, NotFound
from trackside.lifecycle import audit, job_versions, maintenance
from trackside.lifecycle.access import Grants, require_job
from trackside.lifecycle.api.bounds import Tail
from trackside.lifecycle.api.deps import get_caller, get_context
from trackside.lifecycle.api.models import DeploymentId, Logs
from trackside.lifecycle.audit import EventType
from trackside.lifecycle.deployments import deployed_version, latest_deployment
from trackside.lifecycle.wiring import LifecycleContext
from trackside.manifest.load import manifest_from_yaml, manifest_to_yaml
from trackside.manifest.versions import is_version_pattern

router = APIRouter()


class JobFamily(BaseModel):
    name: str
    id: str


class JobDeleted(BaseModel):
    name: str
    version: str
    status: str


ANSI_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _job_dto(
    context: LifecycleContext, name: str, version: str, caller: Caller, scope: Scope = Scope.READ_JOB
) -> JobDto:
    with context.db.session() as session:
        job = job_versions.get_job(session, name, version)
        require_job(session, caller, scope, job)
        return job_versions.job_to_dto(job, context.settings.pub_url)


def _tail(text: str, tail: int) -> str:
    if tail <= 0:
        return text
    lines = text.splitlines()
    return "\n".join(lines[-tail:])


@router.get("/job", response_model=list[JobDto])
def list_jobs(caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)) -> Response:
    """The jobs the caller may read."""
    with context.db.session() as session:
        grants = Grants.of(session, caller)
        body = context.job_listing.json(
            session, lambda family_id, job_id: grants.allows(Scope.READ_JOB, Resource(family_id, job_id))
        )
    return Response(body, media_type="application/json")


@router.get("/job_family", response_model=list[JobFamily])
def list_families(
    caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> list[dict[str, str]]:
    """The families of the jobs the caller may read."""
    with context.db.session() as session:
        visible = {job.family_id for job in Grants.of(session, caller).readable(job_versions.list_jobs(session))}
        return [{"name": f.name, "id": f.id} for f in job_versions.list_families(session) if f.id in visible]


@router.get("/job/{name}/{version}", response_model=JobDto)
def get_job(
    name: str, version: str, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> dict[str, Any]:
    return _job_dto(context, name, version, caller).to_api()


@router.delete("/job/{name}/{version}", response_model=JobDeleted)
def delete_job(
    name: str, version: str, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> dict[str, str]:
    _job_dto(context, name, version, caller, Scope.DELETE_JOB)
    maintenance.refuse_changes(context.db, "deleting jobs")
    context.deployer.delete_job(name, version, username=caller.username)
    return {"name": name, "version": version, "status": "deleted"}


@router.post("/job/{name}/{version}/redeploy", status_code=202, response_model=DeploymentId)
def redeploy_job(
    name: str, version: str, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> dict[str, str]:
    _job_dto(context, name, version, caller, Scope.DEPLOY_JOB)
    maintenance.refuse_changes(context.db, "redeploying jobs")
    return {"id": context.deployer.start_redeploy(name, version, username=caller.username)}


@router.post("/job/{name}/{version}/reprovision", status_code=202, response_model=DeploymentId)
def reprovision_job(
    name: str, version: str, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> dict[str, str]:
    """New workloads from the version's existing build, nothing rebuilt (Racetrack's reprovision)."""
    _job_dto(context, name, version, caller, Scope.DEPLOY_JOB)
    maintenance.refuse_changes(context.db, "reprovisioning jobs")
    return {"id": context.deployer.start_reprovision(name, version, username=caller.username)}


class ManifestBody(BaseModel):
    manifest_yaml: str


@router.put("/job/{name}/{version}/manifest", response_model=JobDto)
def update_manifest(
    name: str,
    version: str,
    body: ManifestBody,
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, Any]:
    """Edit the stored manifest online; it takes effect on the next redeploy (Racetrack's semantics)."""
    job = _job_dto(context, name, version, caller, Scope.DEPLOY_JOB)
    maintenance.refuse_changes(context.db, "editing manifests")
    manifest = manifest_from_yaml(body.manifest_yaml, source="manifest_yaml")
    if (manifest.name, manifest.version) != (job.name, job.version):
        raise InvalidInput(
            f"manifest_yaml: name and version are immutable (job {job.name} {job.version}, "
            f"got {manifest.name} {manifest.version})"
        )
    with context.db.session() as session:
        row = job_versions.get_job(session, job.name, job.version)
        job_versions.update_job(row, manifest=manifest_to_yaml(manifest))
        audit.record(session, EventType.MANIFEST_UPDATED, caller.username, job_name=job.name, job_version=job.version)
        return job_versions.job_to_dto(row, context.settings.pub_url).to_api()


def _runtime_logs(context: LifecycleContext, name: str, version: str, tail: int, caller: Caller) -> str:
    job = _job_dto(context, name, version, caller)
    target = context.target(job.infrastructure_target)
    if target is None or target.job_monitor is None:
        raise NotFound(f"infrastructure target {job.infrastructure_target} of job {name} {version} is gone")
    return target.job_monitor.read_recent_logs(job, tail=tail)


@router.get("/job/{name}/{version}/logs", response_model=Logs)
def runtime_logs(
    name: str,
    version: str,
    tail: Tail = 20,
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, str]:
    return {"logs": _runtime_logs(context, name, version, tail, caller)}


@router.get("/job/{name}/{version}/logs/plain", response_class=PlainTextResponse)
def runtime_logs_plain(
    name: str,
    version: str,
    tail: Tail = 20,
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> str:
    return ANSI_ESCAPES.sub("", _runtime_logs(context, name, version, tail, caller))


@router.get("/job/{name}/{version}/logs/stream")
async def runtime_logs_stream(
    name: str,
    version: str,
    tail: Tail = 20,
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> StreamingResponse:
    """Follow a job's logs as server-sent events: one `data:` event per line."""
    job = await asyncio.to_thread(_job_dto, context, name, version, caller)
    target = context.target(job.infrastructure_target)
    if target is None or target.logs_streamer is None:
        raise InvalidInput(f"infrastructure target {job.infrastructure_target} cannot stream logs")
    streamer = target.logs_streamer
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue(maxsize=10_000)
    session_id = uuid.uuid4().hex

    def on_next_line(_session: str, line: str) -> None:
        loop.call_soon_threadsafe(lines.put_nowait, line)

    props = {"job_name": job.name, "job_version": job.version, "tail": str(tail)}
    await asyncio.to_thread(streamer.create_session, session_id, props, on_next_line)

    async def events() -> AsyncIterator[str]:
        try:
            while True:
                try:
                    line = await asyncio.wait_for(lines.get(), timeout=15)
                except TimeoutError:
                    yield ": keepalive\n\n"  # lets proxies and the client notice a dead connection
                    continue
                yield f"data: {line.rstrip(chr(10))}\n\n"
        finally:
            await asyncio.to_thread(streamer.close_session, session_id)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _build_logs(context: LifecycleContext, name: str, version: str, tail: int, caller: Caller) -> str:
    with context.db.session() as session:
        job = job_versions.find_job(session, name, version)
        if job is not None:
            require_job(session, caller, Scope.READ_JOB, job)
        elif not Grants.of(session, caller).allows(Scope.DEPLOY_NEW_FAMILY, Resource()) and not caller.is_internal:
            # A failed first deploy leaves no job: its logs are for those who may deploy at all.
            raise NotFound(f"no deployment of job {name} version {version} found")
        exact = job.version if job is not None else version
        if job is None and is_version_pattern(version):  # `racetrack build-logs NAME` after a failed first deploy
            exact = deployed_version(session, name, version) or version
        deployment = latest_deployment(session, name, exact)
        if deployment is None:
            raise NotFound(f"no deployment of job {name} version {version} found")
        return _tail(deployment.build_logs or "", tail)


@router.get("/job/{name}/{version}/build-logs", response_model=Logs)
def build_logs(
    name: str,
    version: str,
    tail: Tail = 0,
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, str]:
    return {"logs": _build_logs(context, name, version, tail, caller)}


@router.get("/job/{name}/{version}/build-logs/plain", response_class=PlainTextResponse)
def build_logs_plain(
    name: str,
    version: str,
    tail: Tail = 0,
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> str:
    return ANSI_ESCAPES.sub("", _build_logs(context, name, version, tail, caller))
