"""Jobs: the table (grouped by family, filtered, sorted, live) and a job's page with its logs,
call charts and actions (redeploy, reprovision, move, delete)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import JSONResponse, Response

from trackside.cli.client import ApiError, ApiUnreachable
from trackside.dashboard.client import job_path
from trackside.dashboard.views import get, post
from trackside.dashboard.web import BASE, FormState, Page, PageError, poll_changes, sse_message, sse_response

FILTERS = ("name", "version", "owner", "job_type", "target", "status")
SORTS = {"name": "name", "deploy": "latest deploy", "status": "status (faulty first)"}
FAMILIES_PER_PAGE = 50
STATUSES = ("running", "starting", "error", "lost", "orphaned")


def _table_query(page: Page) -> dict[str, Any]:
    params = page.request.query_params
    query: dict[str, Any] = {name: params.get(name, "").strip() for name in FILTERS}
    query["sort"] = params.get("sort", "name") if params.get("sort") in SORTS else "name"
    try:
        query["page"] = max(1, int(params.get("page", "1")))
    except ValueError:
        query["page"] = 1
    return query


async def _table(page: Page, query: dict[str, Any]) -> dict[str, Any]:
    api_query = {k: v for k, v in query.items() if k != "page"}
    data: dict[str, Any] = await page.api.get(
        "/jobs/table", offset=(query["page"] - 1) * FAMILIES_PER_PAGE, limit=FAMILIES_PER_PAGE, **api_query
    )
    return data


def _render_table(page: Page, query: dict[str, Any], table: dict[str, Any]) -> str:
    return page.dashboard.render("partials/jobs_table.html", page=page, query=query, table=table)


@get("/jobs")
async def jobs(page: Page) -> Response:
    query = _table_query(page)
    table = await _table(page, query)
    return page.render(
        "jobs.html", query=query, table=table, sorts=SORTS, statuses=STATUSES, per_page=FAMILIES_PER_PAGE
    )


@get("/jobs/table")
async def jobs_table(page: Page) -> Response:
    query = _table_query(page)
    return page.render("partials/jobs_table.html", query=query, table=await _table(page, query))


@get("/jobs/events")
async def jobs_events(page: Page) -> Response:
    """Live status: the table again whenever any job changes (polling the API's cheap stamp)."""
    query = _table_query(page)

    async def fetch() -> str:
        return str((await page.api.get("/jobs/stamp"))["stamp"])

    async def events() -> AsyncIterator[str]:
        first = True
        async for message in poll_changes(page, fetch, lambda stamp: stamp, 2.0, "stamp"):
            if message.startswith("event: stamp"):
                if first:  # the page already shows this state
                    first = False
                    continue
                try:
                    table = await _table(page, query)
                except (ApiError, ApiUnreachable):
                    return
                yield sse_message(_render_table(page, query, table), "table")
            else:
                yield message

    return sse_response(events())


async def _job(page: Page, name: str, version: str) -> dict[str, Any]:
    job: dict[str, Any] = await page.api.get(job_path(name, version))
    return job


def _names(page: Page) -> tuple[str, str]:
    params = page.request.path_params
    return str(params["name"]), str(params["version"])


async def _job_page(page: Page, move: FormState | None = None, status_code: int = 200) -> Response:
    name, version = _names(page)
    job = await _job(page, name, version)
    targets = sorted((await page.api.get("/plugin/infrastructure_targets")).keys())
    try:
        logs = (await page.api.get(f"{job_path(name, version)}/logs", tail=100))["logs"]
    except (ApiError, ApiUnreachable) as exc:
        logs = f"(runtime logs unavailable: {exc.message})"
    pub = await page.dashboard.job_pub_base(page.api)
    manifest = job.get("manifest") or {}
    return page.render(
        "job.html",
        status_code=status_code,
        job=job,
        manifest=manifest,
        targets=targets,
        other_targets=[t for t in targets if t != job.get("infrastructure_target")],
        logs=logs,
        job_url=f"{pub}/job/{name}/{version}",
        move=move or FormState(),
    )


@get("/jobs/{name}/{version}")
async def job_page(page: Page) -> Response:
    return await _job_page(page)


@get("/jobs/{name}/{version}/build-logs")
async def build_logs(page: Page) -> Response:
    name, version = _names(page)
    try:
        logs = (await page.api.get(f"{job_path(name, version)}/build-logs", tail=500))["logs"]
    except ApiError as exc:
        logs = f"(no build log: {exc.message})"
    return page.render("partials/pre.html", text=logs, label="Build log")


@get("/jobs/{name}/{version}/logs/events")
async def logs_events(page: Page) -> Response:
    """The job's runtime log, followed live: one event per new line (text, never HTML)."""
    name, version = _names(page)
    await _job(page, name, version)  # 403/404 as a page, before the stream starts

    async def events() -> AsyncIterator[str]:
        try:
            async with page.api.stream_lines(f"{job_path(name, version)}/logs/stream", tail=100) as lines:
                yield ": following\n\n"
                async for line in lines:
                    if line.startswith("data: "):
                        yield sse_message(json.dumps(line[6:]), "line")
                    elif line.startswith(":"):
                        yield ": keepalive\n\n"
        except (ApiError, ApiUnreachable) as exc:
            yield sse_message(json.dumps({"error": exc.message}), "failed")

    return sse_response(events())


def _window(page: Page) -> str:
    window = page.request.query_params.get("window", "hour")
    if window not in ("hour", "day"):
        raise PageError(400, "window: choose hour or day")
    return window


@get("/jobs/{name}/{version}/calls")
async def calls(page: Page) -> Response:
    name, version = _names(page)
    return JSONResponse(await page.api.get(f"{job_path(name, version)}/calls", window=_window(page)))


@get("/jobs/{name}/{version}/calls/events")
async def calls_events(page: Page) -> Response:
    """The call chart's data, sent again whenever the gateways' counts change."""
    name, version = _names(page)
    window = _window(page)

    async def fetch() -> Any:
        return await page.api.get(f"{job_path(name, version)}/calls", window=window)

    return sse_response(poll_changes(page, fetch, lambda data: json.dumps(data), 3.0, "calls"))


# -- actions ----------------------------------------------------------------------------------------


@post("/jobs/{name}/{version}/redeploy")
async def redeploy(page: Page) -> Response:
    await page.form()
    name, version = _names(page)
    answer = await page.api.post(f"{job_path(name, version)}/redeploy")
    return page.redirect(f"{BASE}/deployments/{answer['id']}", flash=f"Redeploying {name} {version}.")


@post("/jobs/{name}/{version}/reprovision")
async def reprovision(page: Page) -> Response:
    await page.form()
    name, version = _names(page)
    answer = await page.api.post(f"{job_path(name, version)}/reprovision")
    return page.redirect(f"{BASE}/deployments/{answer['id']}", flash=f"Reprovisioning {name} {version}.")


@post("/jobs/{name}/{version}/move")
async def move(page: Page) -> Response:
    form = await page.form()
    name, version = _names(page)
    state = FormState({"infrastructure_target": str(form.get("infrastructure_target", ""))})
    body = {"infrastructure_target": state.value("infrastructure_target")}
    moved = await page.attempt(
        page.api.post(f"{job_path(name, version)}/move", json=body), state, ["infrastructure_target"]
    )
    if moved is None:
        return await _job_page(page, move=state, status_code=400)
    target = moved.get("infrastructure_target")
    return page.redirect(page.url(f"/jobs/{name}/{version}"), flash=f"Moved {name} {version} to {target}.")


@get("/jobs/{name}/{version}/delete")
async def delete_confirm(page: Page) -> Response:
    name, version = _names(page)
    job = await _job(page, name, version)
    back = page.request.query_params.get("back", "")
    return page.render("job_delete.html", job=job, back=back if back.startswith(BASE + "/") else "")


@post("/jobs/{name}/{version}/delete")
async def delete(page: Page) -> Response:
    form = await page.form()
    name, version = _names(page)
    await page.api.delete(job_path(name, version))
    back = str(form.get("back", ""))
    return page.redirect(
        back if back.startswith(BASE + "/") else f"{BASE}/jobs", flash=f"Deleted job {name} {version}."
    )
