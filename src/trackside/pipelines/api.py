"""The pipelines API at the platform's root, `/api/...`: chainr's endpoints unchanged, and ours beside them.

chainr's (reference 1.4): `GET /api`, `POST /api/runs` (202, a Run with `metadata.selfLink`),
`GET /api/runs` (a RunList, newest first), `GET /api/runs/{uid}`; errors as `{"kind": "Error",
"error": "..."}` (we add `"type"`, the house shape's field), other methods 405 with `Allow: GET, POST`.
Ours: cancel and retry, a run's DAG, a step's details and logs (`?follow=1`: server-sent events),
a run's events (server-sent, resumable with `Last-Event-ID`), named pipelines and their runs, and
cron schedules.

Every endpoint needs a token with the `run_pipeline` scope (new users have it; `full_access` covers
it; ESCs get it with `trackside grant esc ESC_ID FAMILY --scope run_pipeline`), sent as
`X-Racetrack-Auth: TOKEN` or `Authorization: Bearer TOKEN` (how an unchanged chainr client passes it:
`curl -H "Authorization: Bearer $TOKEN" ...`). Anyone with the scope reads every run; cancel and
retry are for the run's owner and administrators.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from trackside.auth.scopes import Scope
from trackside.auth.subjects import Caller
from trackside.errors import InvalidInput, TracksideError
from trackside.lifecycle.access import require_scope_in
from trackside.lifecycle.api.bounds import refuse_nul_characters
from trackside.lifecycle.api.deps import get_caller, get_context
from trackside.pipelines import cron, runs
from trackside.pipelines.conditions import ACTIVE_RUN, FINAL, Status
from trackside.pipelines.cron import POLICIES, schedule_body, schedule_list
from trackside.pipelines.definitions import definition_body, definition_list
from trackside.pipelines.events import BELL, events_after
from trackside.pipelines.logs import read_from, read_log
from trackside.pipelines.runs import API, RUNS, owner_of
from trackside.pipelines.service import PipelineService

ALLOW = "GET, POST"
POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0


def chainr_error(status_code: int, message: str, type_name: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"kind": "Error", "error": message, "type": type_name}, status_code=status_code, headers=headers
    )


class ChainrRoute(APIRoute):
    """Errors of these routes in chainr's shape, whatever raised them (auth, validation, the store)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def chainr_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except TracksideError as exc:
                return chainr_error(exc.status_code, exc.message, exc.type_name)
            except RequestValidationError as exc:
                problems = []
                for error in exc.errors():
                    location = "/".join(str(part) for part in error.get("loc", ()) if part != "body")
                    problems.append(f"/{location}: {error.get('msg')}")
                return chainr_error(400, ", ".join(problems), "InvalidInput")
            except StarletteHTTPException as exc:
                return chainr_error(exc.status_code, str(exc.detail), "HTTPException")

        return chainr_handler


router = APIRouter(route_class=ChainrRoute, tags=["pipelines"])


def mount(app: FastAPI, service: PipelineService) -> None:
    """Serve these routes from the lifecycle's app (`create_app`), backed by `service`. The pipelines
    sit above the lifecycle: they use its auth and its app, and it never imports them."""
    app.state.pipelines = service
    app.include_router(router, dependencies=[Depends(refuse_nul_characters)])


def get_service(request: Request) -> PipelineService:
    service: PipelineService = request.app.state.pipelines
    return service


def pipeline_caller(request: Request) -> Caller:
    """The caller, who must hold `run_pipeline` (or `full_access`)."""
    caller = get_caller(request)
    require_scope_in(get_context(request).db, caller, Scope.RUN_PIPELINE)
    return caller


def _method_not_allowed() -> JSONResponse:
    return chainr_error(405, "Method not allowed", "MethodNotAllowed", headers={"Allow": ALLOW})


# -- chainr's endpoints ----------------------------------------------------------------------------


@router.get(API)
def api_root(caller: Caller = Depends(pipeline_caller)) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "metadata": {"selfLink": API},
        "resources": {
            "runs": {"url": RUNS, "description": "Interact with runs"},
            "pipelines": {"url": f"{API}/pipelines", "description": "Named, versioned pipelines"},
            "schedules": {"url": f"{API}/schedules", "description": "Cron schedules of named pipelines"},
        },
    }


@router.post(RUNS, status_code=202)
def create_run(
    body: Any = Body(None),
    caller: Caller = Depends(pipeline_caller),
    service: PipelineService = Depends(get_service),
) -> JSONResponse:
    if body is None:
        raise InvalidInput('/: the body must be a pipeline: {"kind": "Pipeline", "jobs": {...}}')
    started = service.start_run(body, owner_of(caller))
    return JSONResponse(started.answer, status_code=202, headers={"Location": f"{RUNS}/{started.uid}"})


@router.get(RUNS)
def list_runs(
    status: str | None = Query(None, description="Only runs with this status (comma-separated)."),
    pipeline: str | None = Query(None, description="Only runs of this named pipeline."),
    limit: int | None = Query(None, ge=1, le=10000, description="At most this many (newest first)."),
    offset: int = Query(0, ge=0, description="Skip this many of the newest first (paging with `limit`)."),
    caller: Caller = Depends(pipeline_caller),
    service: PipelineService = Depends(get_service),
) -> dict[str, Any]:
    return runs.run_list(service.db, status, pipeline, limit, offset)


@router.get(RUNS + "/{uid}")
def read_run(
    uid: str, caller: Caller = Depends(pipeline_caller), service: PipelineService = Depends(get_service)
) -> dict[str, Any]:
    return runs.run_body(service.db, uid)


@router.api_route(API, methods=["POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
@router.api_route(RUNS, methods=["PUT", "PATCH", "DELETE"], include_in_schema=False)
@router.api_route(RUNS + "/{uid}", methods=["POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
def method_not_allowed() -> JSONResponse:
    return _method_not_allowed()


# -- run actions -----------------------------------------------------------------------------------


@router.post(RUNS + "/{uid}/cancel", status_code=202)
def cancel_run(
    uid: str, caller: Caller = Depends(pipeline_caller), service: PipelineService = Depends(get_service)
) -> JSONResponse:
    runs.require_run_manager(service.db, caller, uid)
    service.cancel_run(uid, f"canceled by {caller.display}")
    return JSONResponse(runs.run_body(service.db, uid, detail=False), status_code=202)


@router.post(RUNS + "/{uid}/retry", status_code=202)
def retry_run(
    uid: str, caller: Caller = Depends(pipeline_caller), service: PipelineService = Depends(get_service)
) -> JSONResponse:
    runs.require_run_manager(service.db, caller, uid)
    started = service.retry_run(uid, owner_of(caller))
    return JSONResponse(started.answer, status_code=202, headers={"Location": f"{RUNS}/{started.uid}"})


@router.get(RUNS + "/{uid}/graph")
def run_graph(
    uid: str, caller: Caller = Depends(pipeline_caller), service: PipelineService = Depends(get_service)
) -> dict[str, Any]:
    return runs.run_graph(service.db, uid)


@router.get(RUNS + "/{uid}/jobs/{job}")
def read_job(
    uid: str, job: str, caller: Caller = Depends(pipeline_caller), service: PipelineService = Depends(get_service)
) -> dict[str, Any]:
    return runs.step_body(service.db, uid, job)


def _log_source(service: PipelineService, uid: str, job: str, attempt: int | None) -> tuple[Any, int, str, str | None]:
    return runs.log_source(service.db, service.settings.data_dir, uid, job, attempt)


@router.get(RUNS + "/{uid}/jobs/{job}/logs", response_model=None)
async def job_logs(
    uid: str,
    job: str,
    request: Request,
    follow: bool = Query(False, description="Stream new lines as server-sent events until the step ends."),
    attempt: int | None = Query(None, ge=1, description="This attempt's log (default: the latest)."),
    caller: Caller = Depends(pipeline_caller),
    service: PipelineService = Depends(get_service),
) -> Response:
    path, wanted, status, stored = await run_in_threadpool(_log_source, service, uid, job, attempt)
    if not follow:
        text = (read_log(path) if path is not None else None) or stored or ""
        return PlainTextResponse(text)

    async def lines() -> AsyncIterator[str]:
        log_file, following = path, wanted  # 0: the step has not started; its first attempt is followed
        began = status != Status.PENDING
        offset = 0
        current = status
        seen = BELL.count
        idle = 0.0
        while True:
            if log_file is not None:
                chunk, offset = read_from(log_file, offset)
                for line in chunk.splitlines():
                    yield f"data: {line}\n\n"
            if current in FINAL or await request.is_disconnected():
                break
            if current == Status.PENDING and began:
                break  # this attempt ended and a retry waits: its log is complete
            await asyncio.sleep(0.1)
            idle += 0.1
            if BELL.count != seen or idle >= POLL_SECONDS:
                seen, idle = BELL.count, 0.0
                latest_file, latest, current, _ = await run_in_threadpool(_log_source, service, uid, job, None)
                if not following and latest:  # the step started since the follow began
                    log_file, following, began = latest_file, latest, True
                elif latest != following:
                    current = Status.FAILED  # a new attempt started: this one is over
        rest: str | None = None
        if log_file is not None and log_file.exists():
            chunk, offset = read_from(log_file, offset)
            rest = chunk + (read_log(log_file) or "")[offset:]
        elif following:  # kept only in the step's row: a call step's, or a file on another replica or gone
            rest = (await run_in_threadpool(_log_source, service, uid, job, following))[3]
        for line in (rest or "").splitlines():
            yield f"data: {line}\n\n"
        yield "event: end\ndata: {}\n\n"

    return StreamingResponse(lines(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _events_after(service: PipelineService, uid: str, after: int) -> tuple[list[dict[str, Any]], str]:
    return events_after(service.db, uid, after)


@router.get(RUNS + "/{uid}/events", response_model=None)
async def run_events(
    uid: str,
    request: Request,
    caller: Caller = Depends(pipeline_caller),
    service: PipelineService = Depends(get_service),
) -> Response:
    """Server-sent events of a run: every event so far (after `Last-Event-ID`), then new ones, until it ends."""
    try:
        after = int(request.headers.get("last-event-id") or request.query_params.get("after") or 0)
    except ValueError:
        raise InvalidInput("Last-Event-ID must be an event id (an integer)") from None
    bell = BELL.count
    events, status = await run_in_threadpool(_events_after, service, uid, after)

    async def stream() -> AsyncIterator[str]:
        nonlocal after, events, status
        seen = bell
        loop = asyncio.get_running_loop()
        quiet_since = loop.time()
        while True:
            for event in events:
                after = event["id"]
                yield f"id: {event['id']}\nevent: {event['scope']}\ndata: {json.dumps(event)}\n\n"
            if events:
                quiet_since = loop.time()
            if status not in ACTIVE_RUN:
                yield "event: end\ndata: {}\n\n"
                return
            if await request.is_disconnected():
                return
            # Woken the moment this process commits events (the bell), else every POLL_SECONDS for a
            # scheduler in another process; the bell's count is read before the store, so no ring is lost.
            await BELL.wait_async(seen, POLL_SECONDS)
            if loop.time() - quiet_since >= KEEPALIVE_SECONDS:
                quiet_since = loop.time()
                yield ": keepalive\n\n"
            seen = BELL.count
            events, status = await run_in_threadpool(_events_after, service, uid, after)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


# -- named pipelines -------------------------------------------------------------------------------


class SavePipeline(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="The pipeline's name; saving a name again makes its next version.")
    pipeline: dict[str, Any] = Field(description="The pipeline JSON.")


class RunPipeline(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int | None = Field(None, ge=1, description="Default: the latest version.")
    params: dict[str, Any] = Field(default_factory=dict)


@router.get(API + "/pipelines")
def list_pipelines(
    caller: Caller = Depends(pipeline_caller), service: PipelineService = Depends(get_service)
) -> dict[str, Any]:
    return definition_list(service.db)


@router.post(API + "/pipelines", status_code=201)
def save_pipeline(
    body: SavePipeline, caller: Caller = Depends(pipeline_caller), service: PipelineService = Depends(get_service)
) -> JSONResponse:
    name, version = service.save_definition(body.name, body.pipeline, caller.username)
    return JSONResponse(definition_body(service.db, name, version), status_code=201)


@router.get(API + "/pipelines/{name}")
def read_pipeline(
    name: str, caller: Caller = Depends(pipeline_caller), service: PipelineService = Depends(get_service)
) -> dict[str, Any]:
    return definition_body(service.db, name)


@router.get(API + "/pipelines/{name}/versions/{version}")
def read_pipeline_version(
    name: str,
    version: int,
    caller: Caller = Depends(pipeline_caller),
    service: PipelineService = Depends(get_service),
) -> dict[str, Any]:
    return definition_body(service.db, name, version)


@router.post(API + "/pipelines/{name}/runs", status_code=202)
def run_pipeline(
    name: str,
    body: RunPipeline | None = None,
    caller: Caller = Depends(pipeline_caller),
    service: PipelineService = Depends(get_service),
) -> JSONResponse:
    body = body or RunPipeline(version=None)
    started = service.run_definition(name, body.version, body.params, owner_of(caller))
    return JSONResponse(started.answer, status_code=202, headers={"Location": f"{RUNS}/{started.uid}"})


# -- schedules -------------------------------------------------------------------------------------


class CreateSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    pipeline: str = Field(description="A named pipeline.")
    version: int | None = Field(None, ge=1, description="A fixed version; default: the latest at each tick.")
    cron: str = Field(description="Five cron fields, or @hourly, @daily...")
    timezone: str = "UTC"
    concurrencyPolicy: str = Field("Allow", description=" | ".join(POLICIES))
    startingDeadlineSeconds: float | None = Field(None, ge=0)
    params: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True


@router.get(API + "/schedules")
def list_schedules(
    caller: Caller = Depends(pipeline_caller), service: PipelineService = Depends(get_service)
) -> dict[str, Any]:
    return schedule_list(service.db)


@router.post(API + "/schedules", status_code=201)
def create_schedule(
    body: CreateSchedule, caller: Caller = Depends(pipeline_caller), service: PipelineService = Depends(get_service)
) -> JSONResponse:
    service.create_schedule(body.model_dump(), owner_of(caller))
    return JSONResponse(schedule_body(service.db, body.name), status_code=201)


@router.get(API + "/schedules/{name}")
def read_schedule(
    name: str, caller: Caller = Depends(pipeline_caller), service: PipelineService = Depends(get_service)
) -> dict[str, Any]:
    return schedule_body(service.db, name)


@router.delete(API + "/schedules/{name}", status_code=204)
def delete_schedule(
    name: str, caller: Caller = Depends(pipeline_caller), service: PipelineService = Depends(get_service)
) -> Response:
    cron.delete_schedule(service.db, caller, name)
    return Response(status_code=204)


@router.api_route(RUNS + "/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
def unknown_resource(rest: str) -> JSONResponse:
    return chainr_error(404, "Resource not found", "NotFound")
