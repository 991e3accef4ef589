"""Deployments: recent ones, one followed live (phase, build log), and the "deploy a new job" form."""

from __future__ import annotations

import base64
from typing import Any

import yaml
from starlette.datastructures import UploadFile
from starlette.responses import Response

from trackside.dashboard.views import get, post
from trackside.dashboard.web import BASE, FormState, Page, poll_changes, sse_response

PER_PAGE = 50
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
FIELDS = ["manifest", "build_context", "force"]


def _page_number(page: Page) -> int:
    try:
        return max(1, int(page.request.query_params.get("page", "1")))
    except ValueError:
        return 1


@get("/deployments")
async def deployments(page: Page) -> Response:
    number = _page_number(page)
    mine = page.request.query_params.get("mine") == "1"
    data = await page.api.get("/deployments", offset=(number - 1) * PER_PAGE, limit=PER_PAGE, mine=mine or None)
    return page.render("deployments.html", data=data, number=number, mine=mine)


@get("/deployments/new")
async def new_deployment(page: Page) -> Response:
    return page.render("deploy_new.html", state=FormState())


def _manifest(text: str, state: FormState) -> dict[str, Any] | None:
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        state.errors["manifest"] = f"manifest: not valid YAML: {exc}"
        return None
    if not isinstance(loaded, dict):
        state.errors["manifest"] = "manifest: expected a mapping of job.yaml fields (name, version, jobtype, ...)"
        return None
    return loaded


async def _build_context(upload: Any, state: FormState) -> str | None:
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        state.errors["build_context"] = f"build_context: the upload is over {MAX_UPLOAD_BYTES // 2**20} MiB"
    elif data[:2] != b"\x1f\x8b":
        state.errors["build_context"] = "build_context: expected a .tar.gz of the job's directory"
    return base64.b64encode(data).decode()


@post("/deployments/new")
async def deploy(page: Page) -> Response:
    form = await page.form()
    state = FormState({"manifest": str(form.get("manifest", "")), "force": "1" if form.get("force") else ""})
    manifest = _manifest(state.value("manifest"), state)
    context = await _build_context(form.get("build_context"), state)
    if manifest is None or state.errors:
        return page.render("deploy_new.html", status_code=400, state=state)
    body = {"manifest": manifest, "build_context": context, "force": bool(state.value("force"))}
    answer = await page.attempt(page.api.post("/deploy", json=body), state, FIELDS)
    if answer is None:
        return page.render("deploy_new.html", status_code=400, state=state)
    return page.redirect(f"{BASE}/deployments/{answer['id']}", flash="Deployment started.")


async def _deployment(page: Page) -> dict[str, Any]:
    data: dict[str, Any] = await page.api.get(f"/deployments/{page.request.path_params['id']}", tail=400)
    return data


@get("/deployments/{id}")
async def deployment(page: Page) -> Response:
    return page.render("deployment.html", deployment=await _deployment(page))


@get("/deployments/{id}/events")
async def deployment_events(page: Page) -> Response:
    """The deployment's progress, re-rendered whenever it changes, until it is done or failed."""

    def render(value: dict[str, Any]) -> str:
        return page.dashboard.render("partials/deployment_progress.html", page=page, deployment=value)

    return sse_response(
        poll_changes(page, lambda: _deployment(page), render, 0.7, "progress", lambda d: d["status"] != "in_progress")
    )
