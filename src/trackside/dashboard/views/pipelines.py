"""Pipelines: the runs list (chainr's coloured step bars and active count), a run's page with its DAG
drawn and followed live, a step's logs, outputs and attempts, cancel and retry, and the "start a run
from JSON" form. Everything goes through the pipelines API (`/api/runs...`), never the store.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.responses import Response

from trackside.cli.client import ApiError, ApiUnreachable
from trackside.dashboard.views import get, post
from trackside.dashboard.web import BASE, FormState, Page, poll_changes, sse_message, sse_response
from trackside.pipelines.conditions import STATUS_COLOURS

PER_PAGE = 25
ACTIVE = ("PENDING", "RUNNING")
STATUSES = ("PENDING", "RUNNING", "SUCCESSFUL", "FAILED", "SKIPPED", "CANCELED")
LIVE_INTERVAL_S = 0.5
LIST_INTERVAL_S = 2.0  # chainr's UI polls its list every 2 s
EXAMPLE = json.dumps(
    {
        "kind": "Pipeline",
        "jobs": {
            "first": {"image": "busybox", "run": "exit 0"},
            "second": {"image": "busybox", "run": "exit 0"},
            "success": {"dependsOn": [{"job": "first"}], "image": "busybox", "run": "exit 0"},
            "error": {
                "dependsOn": [{"job": "first", "conditions": {"failure": True}}],
                "image": "busybox",
                "run": "exit 0",
            },
        },
    },
    indent=2,
)

# The DAG's drawing: one column per level (longest path from a root), one row per step in it.
NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 168, 44, 64, 18, 12


@dataclass
class Node:
    name: str
    status: str
    x: int
    y: int
    href: str
    title: str
    label: str


@dataclass
class Edge:
    path: str
    condition: str


@dataclass
class Dag:
    width: int
    height: int
    nodes: list[Node]
    edges: list[Edge]


def _run_path(uid: str) -> str:
    return f"/runs/{quote(uid, safe='')}"


def _job_url(uid: str, job: str) -> str:
    return f"{BASE}/pipelines/runs/{quote(uid, safe='')}/jobs/{quote(job, safe='')}"


def dag_of(run: dict[str, Any]) -> Dag:
    """Where each step and edge of a run goes: levels computed here from `dependsOn` (jobs come in
    topological order; a dependency not among them, impossible once validated, counts as a root)."""
    uid = run["metadata"]["uid"]
    jobs = run["jobs"]
    names = {job["name"] for job in jobs}
    levels: dict[str, int] = {}
    for job in jobs:
        deps = [d["job"] for d in job.get("dependsOn") or [] if d["job"] in names]
        levels[job["name"]] = 1 + max((levels.get(d, 0) for d in deps), default=-1)
    rows: dict[int, int] = {}
    where: dict[str, tuple[int, int]] = {}
    nodes = []
    for job in jobs:
        level = levels[job["name"]]
        row = rows.get(level, 0)
        rows[level] = row + 1
        x, y = PAD + level * (NODE_W + GAP_X), PAD + row * (NODE_H + GAP_Y)
        where[job["name"]] = (x, y)
        label = job["name"] if len(job["name"]) <= 20 else job["name"][:19] + "…"
        detail = job["status"] + (f" (attempt {job['attempt']})" if (job.get("attempt") or 0) > 1 else "")
        title = f"{job['name']}: {detail}" + (f": {job['reason']}" if job.get("reason") else "")
        nodes.append(Node(job["name"], job["status"], x, y, _job_url(uid, job["name"]), title, label))
    edges = []
    for job in jobs:
        for dep in job.get("dependsOn") or []:
            if dep["job"] not in where:
                continue
            (x1, y1), (x2, y2) = where[dep["job"]], where[job["name"]]
            sx, sy, tx, ty = x1 + NODE_W, y1 + NODE_H // 2, x2, y2 + NODE_H // 2
            bend = (tx - sx) // 2
            edges.append(Edge(f"M{sx},{sy} C{sx + bend},{sy} {tx - bend},{ty} {tx - 6},{ty}", dep["condition"]))
    width = PAD * 2 + (max(levels.values(), default=0) + 1) * (NODE_W + GAP_X) - GAP_X
    height = PAD * 2 + max(rows.values(), default=1) * (NODE_H + GAP_Y) - GAP_Y
    return Dag(width, height, nodes, edges)


def _page_number(page: Page) -> int:
    try:
        return max(1, int(page.request.query_params.get("page", "1")))
    except ValueError:
        return 1


async def _runs(page: Page, number: int, status: str) -> dict[str, Any]:
    data: dict[str, Any] = await page.api.pipelines_get(
        "/runs", limit=PER_PAGE, offset=(number - 1) * PER_PAGE, status=status or None
    )
    return data


def _status_filter(page: Page) -> str:
    status = page.request.query_params.get("status", "").upper()
    return status if status in STATUSES else ""


def _render_runs(page: Page, data: dict[str, Any], number: int, status: str) -> str:
    return page.dashboard.render(
        "partials/pipeline_runs.html", page=page, data=data, number=number, status=status, colours=STATUS_COLOURS
    )


@get("/pipelines")
async def runs(page: Page) -> Response:
    number, status = _page_number(page), _status_filter(page)
    data = await _runs(page, number, status)
    return page.render(
        "pipelines.html",
        runs_html=_render_runs(page, data, number, status),
        number=number,
        status=status,
        statuses=STATUSES,
    )


@get("/pipelines/events")
async def runs_events(page: Page) -> Response:
    """The runs list re-rendered whenever a run or step changes (chainr's UI polled every 2 s)."""
    number, status = _page_number(page), _status_filter(page)
    await _runs(page, number, status)  # a refusal as a page, before the stream starts
    return sse_response(
        poll_changes(
            page,
            lambda: _runs(page, number, status),
            lambda data: _render_runs(page, data, number, status),
            LIST_INTERVAL_S,
            "runs",
        )
    )


@get("/pipelines/new")
async def new_run(page: Page) -> Response:
    return page.render("pipeline_new.html", state=FormState({"pipeline": EXAMPLE}))


@post("/pipelines/new")
async def start_run(page: Page) -> Response:
    form = await page.form()
    state = FormState({"pipeline": str(form.get("pipeline", ""))})
    try:
        body = json.loads(state.value("pipeline"))
    except json.JSONDecodeError as exc:
        state.errors["pipeline"] = f"pipeline: not valid JSON: {exc}"
        return page.render("pipeline_new.html", status_code=400, state=state)
    answer = await page.attempt(page.api.pipelines_post("/runs", json=body), state, ["pipeline"])
    if answer is None:
        return page.render("pipeline_new.html", status_code=400, state=state)
    uid = answer["metadata"]["uid"]
    return page.redirect(f"{BASE}/pipelines{_run_path(uid)}", flash=f"Run {uid} started.")


async def _run(page: Page) -> dict[str, Any]:
    data: dict[str, Any] = await page.api.pipelines_get(_run_path(page.request.path_params["uid"]))
    return data


def _render_run(page: Page, run: dict[str, Any]) -> str:
    return page.dashboard.render(
        "partials/pipeline_run.html", page=page, run=run, dag=dag_of(run), colours=STATUS_COLOURS, active=ACTIVE
    )


@get("/pipelines/runs/{uid}")
async def run_page(page: Page) -> Response:
    run = await _run(page)
    return page.render("pipeline_run.html", run=run, run_html=_render_run(page, run), active=ACTIVE)


@get("/pipelines/runs/{uid}/events")
async def run_events(page: Page) -> Response:
    """The run's status, buttons, DAG and steps, re-rendered whenever they change, until it ends."""
    await _run(page)
    return sse_response(
        poll_changes(
            page,
            lambda: _run(page),
            lambda run: _render_run(page, run),
            LIVE_INTERVAL_S,
            "run",
            lambda run: run["status"] not in ACTIVE,
        )
    )


@post("/pipelines/runs/{uid}/cancel")
async def cancel(page: Page) -> Response:
    await page.form()
    uid = page.request.path_params["uid"]
    await page.api.pipelines_post(f"{_run_path(uid)}/cancel")
    return page.redirect(f"{BASE}/pipelines{_run_path(uid)}", flash=f"Run {uid}: cancel requested.")


@post("/pipelines/runs/{uid}/retry")
async def retry(page: Page) -> Response:
    await page.form()
    uid = page.request.path_params["uid"]
    answer = await page.api.pipelines_post(f"{_run_path(uid)}/retry")
    new_uid = answer["metadata"]["uid"]
    return page.redirect(f"{BASE}/pipelines{_run_path(new_uid)}", flash=f"Run {new_uid} retries run {uid}.")


def _step_path(page: Page) -> str:
    params = page.request.path_params
    return f"{_run_path(params['uid'])}/jobs/{quote(params['job'], safe='')}"


@get("/pipelines/runs/{uid}/jobs/{job}")
async def step_page(page: Page) -> Response:
    path = _step_path(page)
    step = await page.api.pipelines_get(path)
    try:
        logs = await page.api.pipelines_text(f"{path}/logs")
    except ApiError as exc:
        logs = f"(no log: {exc.message})"
    return page.render(
        "pipeline_step.html",
        step=step,
        uid=page.request.path_params["uid"],
        logs=logs,
        outputs=json.dumps(step.get("outputs") or {}, indent=2, sort_keys=True),
        active=ACTIVE,
        colours=STATUS_COLOURS,
    )


@get("/pipelines/runs/{uid}/jobs/{job}/logs/events")
async def step_logs_events(page: Page) -> Response:
    """The step's log followed live: one event per line (text, never HTML), until the step ends."""
    path = _step_path(page)
    await page.api.pipelines_get(path)

    async def events() -> AsyncIterator[str]:
        try:
            async with page.api.stream_lines(f"/api{path}/logs", root=True, follow=1) as lines:
                yield ": following\n\n"
                event = ""
                async for line in lines:
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event != "end":
                        yield sse_message(json.dumps(line[6:]), "line")
                    elif line == "" and event == "end":
                        yield sse_message("", "end")
                        return
                    elif line == "":
                        event = ""
        except (ApiError, ApiUnreachable) as exc:
            yield sse_message(json.dumps({"error": exc.message}), "failed")

    return sse_response(events())
