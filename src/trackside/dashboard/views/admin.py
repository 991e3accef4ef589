"""Administration (staff only; others get a 403 page): users, external service consumers,
permissions, job manifests, maintenance mode, plugins, public endpoint requests, platform health."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from trackside.cli.client import ApiError, ApiUnreachable
from trackside.dashboard.client import job_path
from trackside.dashboard.views import get, post
from trackside.dashboard.web import BASE, FormState, Page

SCOPES = ("read_job", "deploy_job", "deploy_new_family", "delete_job", "call_job", "call_admin_api", "full_access")
SUBJECT_TYPES = {"user": "User", "esc": "ESC", "job_family": "Job family"}


def _q(value: str) -> str:
    return quote(value, safe="")


def _param(page: Page, name: str) -> str:
    return str(page.request.path_params[name])


async def _delete(page: Page, path: str, back: str, flash: str) -> Response:
    """A one-button form (revoke, uninstall): once the form checks out, DELETE `path`, then back to
    `back` saying what was done."""
    await page.form()
    await page.api.delete(path)
    return page.redirect(f"{BASE}{back}", flash=flash)


Refill = Callable[[Page, FormState, int], Awaitable[Response]]


async def _put_text(page: Page, path: str, field: str, refill: Refill) -> tuple[FormData, Response | None]:
    """A one-field edit form (a manifest, a plugin's configuration): PUT the form's `field` to `path`.
    The form, and the page refilled (400, the refusal beside the field) when the API refused it."""
    form = await page.form()
    state = FormState({field: str(form.get(field, ""))})
    if await page.attempt(page.api.put(path, json={field: state.value(field)}), state, [field]) is None:
        return form, await refill(page, state, 400)
    return form, None


# -- platform: version, health, maintenance, reconcile ------------------------------------------------


async def _health(page: Page, name: str, url: str) -> dict[str, Any]:
    try:
        response = await page.dashboard.http().get(url, timeout=5)
        return {"name": name, "url": url, "ok": response.status_code == 200, "detail": f"HTTP {response.status_code}"}
    except Exception as exc:  # unreachable is a result here
        return {"name": name, "url": url, "ok": False, "detail": f"unreachable: {type(exc).__name__}"}


@get("/admin", staff=True)
async def overview(page: Page) -> Response:
    info, tree = await asyncio.gather(page.api.get("/info"), page.api.get("/plugin/tree"))
    gateway = page.dashboard.gateway_health_url or f"{str(info.get('external_pub_url') or '').rstrip('/')}/health"
    checks = await asyncio.gather(
        _health(page, "lifecycle (and its database)", page.dashboard.lifecycle_url.rstrip("/") + "/health"),
        _health(page, "gateway", gateway),
    )
    return page.render("admin/overview.html", info=info, tree=tree, checks=checks, reconciled=None)


@post("/admin/maintenance", staff=True)
async def maintenance(page: Page) -> Response:
    form = await page.form()
    enabled = form.get("enabled") == "1"
    await page.api.put("/settings/maintenance", json={"enabled": enabled})
    page.dashboard.forget_maintenance()
    return page.redirect(f"{BASE}/admin", flash=f"Maintenance mode is {'on' if enabled else 'off'}.")


@post("/admin/reconcile", staff=True)
async def reconcile(page: Page) -> Response:
    await page.form()
    answer = await page.api.post("/job/all/reconcile")
    started, failed = len(answer["started"]), len(answer["failed"])
    note = f"Reconcile: {started} lost job(s) being reprovisioned" + (f", {failed} could not start." if failed else ".")
    return page.redirect(f"{BASE}/admin", flash=note)


# -- users ------------------------------------------------------------------------------------------


@get("/admin/users", staff=True)
async def users(page: Page) -> Response:
    return page.render("admin/users.html", users=await page.api.get("/users"), state=FormState())


USER_ACTIONS = {
    "activate": {"is_active": True},
    "deactivate": {"is_active": False},
    "make-staff": {"is_staff": True},
    "remove-staff": {"is_staff": False},
}


@post("/admin/users/{username}/{action}", staff=True)
async def user_action(page: Page) -> Response:
    form = await page.form()
    username, action = _param(page, "username"), _param(page, "action")
    path = f"/users/{_q(username)}"
    if action in USER_ACTIONS:
        await page.api.patch(path, json=USER_ACTIONS[action])
        note = f"User {username}: {action.replace('-', ' ')} done."
    elif action == "delete":
        await page.api.delete(path)
        note = f"User {username} deleted."
    elif action == "password":
        state = FormState({"username": username})
        done = await page.attempt(
            page.api.put(f"{path}/password", json={"password": str(form.get("password", ""))}), state, ["password"]
        )
        if done is None:
            return page.render("admin/users.html", status_code=400, users=await page.api.get("/users"), state=state)
        note = f"Password of {username} set."
    else:
        return page.redirect(f"{BASE}/admin/users", flash=f"Unknown action {action}.")
    return page.redirect(f"{BASE}/admin/users", flash=note)


# -- external service consumers -----------------------------------------------------------------------


async def _escs(page: Page, state: FormState, created: dict[str, Any] | None = None, status: int = 200) -> Response:
    escs = await page.api.get("/escs")
    return page.render("admin/escs.html", status_code=status, escs=escs, state=state, created=created)


@get("/admin/escs", staff=True)
async def escs(page: Page) -> Response:
    return await _escs(page, FormState())


@post("/admin/escs", staff=True)
async def create_esc(page: Page) -> Response:
    form = await page.form()
    state = FormState({"name": str(form.get("name", "")).strip()})
    created = await page.attempt(page.api.post("/escs", json={"name": state.value("name")}), state, ["name"])
    if created is None:
        return await _escs(page, state, status=400)
    return await _escs(page, FormState(), created=created)  # the token is shown this once


async def _esc(page: Page, state: FormState, issued: dict[str, Any] | None = None, status: int = 200) -> Response:
    data = await page.api.get(f"/escs/{_q(_param(page, 'esc_id'))}/auth_data")
    for token in data["tokens"]:
        token.pop("token", None)  # token values are shown once, when issued, never listed
    return page.render("admin/esc.html", status_code=status, esc=data, state=state, issued=issued)


@get("/admin/escs/{esc_id}", staff=True)
async def esc(page: Page) -> Response:
    return await _esc(page, FormState())


@post("/admin/escs/{esc_id}/tokens", staff=True)
async def issue_token(page: Page) -> Response:
    form = await page.form()
    state = FormState({"expiry_days": str(form.get("expiry_days", "")).strip()})
    expiry: int | None = None
    if state.value("expiry_days"):
        try:
            days = float(state.value("expiry_days"))
            expiry = int((datetime.now(UTC) + timedelta(days=days)).timestamp())
        except (ValueError, OverflowError):
            state.errors["expiry_days"] = "expiry_days: a number of days, or empty for a token that never expires"
            return await _esc(page, state, status=400)
    path = f"/escs/{_q(_param(page, 'esc_id'))}/auth_token"
    issued = await page.attempt(page.api.post(path, json={"expiry_time": expiry}), state, ["expiry_days"])
    if issued is None:
        return await _esc(page, state, status=400)
    return await _esc(page, FormState(), issued=issued)


@post("/admin/escs/{esc_id}/tokens/{token_id}/revoke", staff=True)
async def revoke_token(page: Page) -> Response:
    esc_id, token_id = _param(page, "esc_id"), _param(page, "token_id")
    return await _delete(
        page, f"/escs/{_q(esc_id)}/auth_token/{_q(token_id)}", f"/admin/escs/{_q(esc_id)}", f"Token {token_id} revoked."
    )


# -- permissions ------------------------------------------------------------------------------------

GRANT_FIELDS = ["subject_type", "subject", "scope", "job_family", "job_version", "endpoint"]


async def _permissions(page: Page, state: FormState, status: int = 200) -> Response:
    grants, families = await asyncio.gather(page.api.get("/permissions"), page.api.get("/job_family"))
    return page.render(
        "admin/permissions.html",
        status_code=status,
        grants=grants,
        families=[f["name"] for f in families],
        scopes=SCOPES,
        subject_types=SUBJECT_TYPES,
        state=state,
    )


@get("/admin/permissions", staff=True)
async def permissions(page: Page) -> Response:
    return await _permissions(page, FormState({"subject_type": "esc", "scope": "call_job"}))


@post("/admin/permissions", staff=True)
async def grant(page: Page) -> Response:
    form = await page.form()
    state = FormState({name: str(form.get(name, "")).strip() for name in GRANT_FIELDS})
    body = {name: state.value(name) or None for name in GRANT_FIELDS}
    done = await page.attempt(page.api.post("/permissions", json=body), state, GRANT_FIELDS)
    if done is None:
        return await _permissions(page, state, status=400)
    return page.redirect(f"{BASE}/admin/permissions", flash=f"Granted {done['scope']} to {done['subject']}.")


@post("/admin/permissions/{permission_id}/revoke", staff=True)
async def revoke(page: Page) -> Response:
    permission_id = _param(page, "permission_id")
    return await _delete(
        page, f"/permissions/{_q(permission_id)}", "/admin/permissions", f"Permission {permission_id} revoked."
    )


# -- job records: the manifest ------------------------------------------------------------------------


async def _manifest_page(page: Page, state: FormState | None = None, status: int = 200) -> Response:
    name, version = _param(page, "name"), _param(page, "version")
    job = await page.api.get(job_path(name, version))
    state = state or FormState({"manifest_yaml": job.get("manifest_yaml") or ""})
    return page.render("admin/manifest.html", status_code=status, job=job, state=state)


@get("/admin/jobs/{name}/{version}/manifest", staff=True)
async def manifest(page: Page) -> Response:
    return await _manifest_page(page)


@post("/admin/jobs/{name}/{version}/manifest", staff=True)
async def save_manifest(page: Page) -> Response:
    name, version = _param(page, "name"), _param(page, "version")
    form, refused = await _put_text(page, f"{job_path(name, version)}/manifest", "manifest_yaml", _manifest_page)
    if refused is not None:
        return refused
    if form.get("redeploy") == "1":
        answer = await page.api.post(f"{job_path(name, version)}/redeploy")
        return page.redirect(
            f"{BASE}/deployments/{answer['id']}", flash=f"Manifest saved; redeploying {name} {version}."
        )
    return page.redirect(page.url(f"/jobs/{name}/{version}"), flash="Manifest saved; it takes effect on redeploy.")


# -- plugins ----------------------------------------------------------------------------------------


async def _plugins(page: Page, state: FormState, status: int = 200) -> Response:
    return page.render("admin/plugins.html", status_code=status, tree=await page.api.get("/plugin/tree"), state=state)


@get("/admin/plugins", staff=True)
async def plugins(page: Page) -> Response:
    return await _plugins(page, FormState())


@post("/admin/plugins", staff=True)
async def upload_plugin(page: Page) -> Response:
    form = await page.form()
    state = FormState({"replace": "1" if form.get("replace") else ""})
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        state.errors["file"] = "file: choose a plugin's .zip bundle"
        return await _plugins(page, state, 400)
    data = await upload.read()
    files = {"file": (upload.filename, data, "application/zip")}
    params = {"replace": "true" if state.value("replace") else "false"}
    installed = await page.attempt(page.api.post("/plugin/upload", files=files, params=params), state, ["file"])
    if installed is None:
        return await _plugins(page, state, 400)
    return page.redirect(f"{BASE}/admin/plugins", flash=f"Installed plugin {installed['name']} {installed['version']}.")


@post("/admin/plugins/{name}/{version}/delete", staff=True)
async def delete_plugin(page: Page) -> Response:
    name, version = _param(page, "name"), _param(page, "version")
    return await _delete(
        page, f"/plugin/{_q(name)}/{_q(version)}", "/admin/plugins", f"Uninstalled plugin {name} {version}."
    )


@get("/admin/plugins/{name}/{version}/download", staff=True)
async def download_plugin(page: Page) -> Response:
    name, version = _param(page, "name"), _param(page, "version")
    response = await page.api.request("GET", f"/plugin/{_q(name)}/{_q(version)}/download")
    filename = f"{name}-{version}.zip".replace('"', "")
    return Response(
        response.content,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def _config_page(page: Page, state: FormState | None = None, status: int = 200) -> Response:
    name, version = _param(page, "name"), _param(page, "version")
    if state is None:
        config = await page.api.get(f"/plugin/{_q(name)}/{_q(version)}/config")
        state = FormState({"config_data": config if isinstance(config, str) else ""})
    return page.render("admin/plugin_config.html", status_code=status, name=name, version=version, state=state)


@get("/admin/plugins/{name}/{version}/config", staff=True)
async def plugin_config(page: Page) -> Response:
    return await _config_page(page)


@post("/admin/plugins/{name}/{version}/config", staff=True)
async def save_plugin_config(page: Page) -> Response:
    name, version = _param(page, "name"), _param(page, "version")
    _, refused = await _put_text(page, f"/plugin/{_q(name)}/{_q(version)}/config", "config_data", _config_page)
    if refused is not None:
        return refused
    return page.redirect(f"{BASE}/admin/plugins", flash=f"Configuration of {name} {version} saved.")


# -- public endpoint requests ------------------------------------------------------------------------


@get("/admin/public-endpoints", staff=True)
async def public_endpoints(page: Page) -> Response:
    return page.render("admin/public_endpoints.html", requests=await page.api.get("/public-endpoints"))


@post("/admin/public-endpoints/{request_id}/{action}", staff=True)
async def switch_public_endpoint(page: Page) -> Response:
    await page.form()
    request_id, action = _param(page, "request_id"), _param(page, "action")
    if action not in ("approve", "withdraw"):
        return page.redirect(f"{BASE}/admin/public-endpoints", flash=f"Unknown action {action}.")
    try:
        await page.api.post(f"/public-endpoints/{_q(request_id)}/{action}")
    except (ApiError, ApiUnreachable) as exc:
        return page.redirect(f"{BASE}/admin/public-endpoints", flash=f"Could not {action}: {exc.message}")
    return page.redirect(f"{BASE}/admin/public-endpoints", flash=f"Request {action}d.")
