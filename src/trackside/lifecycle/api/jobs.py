"""`/job`: list, get (with version aliases), delete, redeploy, reprovision, runtime and build logs."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel

from trackside.auth.scopes import Scope
from trackside.auth.subjects import Caller
from trackside.domain import JobDto
from trackside.errors import InvalidInput, NotFound
from trackside.lifecycle import jobs, maintenance
from trackside.lifecycle.api.bounds import Tail
from trackside.lifecycle.api.deps import get_caller, get_context
from trackside.lifecycle.api.models import DeploymentId, Logs
from trackside.lifecycle.wiring import LifecycleContext

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
    return jobs.readable(context.db, caller, name, version, context.settings.pub_url, scope)


def _tail(text: str, tail: int) -> str:
    if tail <= 0:
        return text
    lines = text.splitlines()
    return "\n".join(lines[-tail:])


@router.get("/job", response_model=list[JobDto])
def list_jobs(caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)) -> Response:
    """The jobs the caller may read."""
    return Response(jobs.visible_json(context.db, context.job_listing, caller), media_type="application/json")


@router.get("/job_family", response_model=list[JobFamily])
def list_families(
    caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> list[dict[str, str]]:
    """The families of the jobs the caller may read."""
    return jobs.visible_families(context.db, caller)


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
    return jobs.edit_manifest(context.db, caller, job, body.manifest_yaml, context.settings.pub_url)


def _runtime_logs(context: LifecycleContext, name: str, version: str, tail: int, caller: Caller) -> str:
    job = _job_dto(context, name, version, caller)
    target = context.target(job.infrastructure_target)
    if target is None or target.job_monitor is None:
        raise NotFound(f"infrastructure target {job.infrastructure_target} of job {name} {version} is gone")
    return target.job_monitor.read_recent_logs(job, tail=tail)


LogReader = Callable[[LifecycleContext, str, str, int, Caller], str]


def _serve_logs(path: str, read: LogReader, default_tail: int, route_name: str) -> None:
    """`path` answers `{"logs": ...}` and `path/plain` the same text without ANSI escapes."""

    def as_json(
        name: str,
        version: str,
        tail: Tail = default_tail,
        caller: Caller = Depends(get_caller),
        context: LifecycleContext = Depends(get_context),
    ) -> dict[str, str]:
        return {"logs": read(context, name, version, tail, caller)}

    def as_text(
        name: str,
        version: str,
        tail: Tail = default_tail,
        caller: Caller = Depends(get_caller),
        context: LifecycleContext = Depends(get_context),
    ) -> str:
        return ANSI_ESCAPES.sub("", read(context, name, version, tail, caller))

    router.get(path, response_model=Logs, name=route_name)(as_json)
    router.get(f"{path}/plain", response_class=PlainTextResponse, name=f"{route_name}_plain")(as_text)


_serve_logs("/job/{name}/{version}/logs", _runtime_logs, 20, "runtime_logs")


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
    return _tail(jobs.build_logs(context.db, caller, name, version), tail)


_serve_logs("/job/{name}/{version}/build-logs", _build_logs, 0, "build_logs")
