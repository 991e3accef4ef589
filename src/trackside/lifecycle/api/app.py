"""The lifecycle's ASGI app: routes mounted under `/lifecycle/api/v1` and, as Racetrack, `/api/v1`.

The Swagger page at `/lifecycle/docs` serves Swagger UI from the installed `swagger_ui_bundle`
package, not FastAPI's default CDN: a self-hosted platform's docs must work on an air-gapped network.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import swagger_ui_bundle
from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from trackside.lifecycle.api import (
    async_calls,
    audit_pages,
    call_stats,
    deploy,
    deployment_views,
    escs,
    gateway_auth,
    info,
    job_views,
    jobs,
    move,
    permissions,
    public_endpoints,
    reconcile,
    users,
)
from trackside.lifecycle.api import audit as audit_api
from trackside.lifecycle.api import auth as auth_api
from trackside.lifecycle.api import plugins as plugins_api
from trackside.lifecycle.api import settings as settings_api
from trackside.lifecycle.api.bounds import refuse_nul_characters
from trackside.lifecycle.api.deps import install_auth
from trackside.lifecycle.api.errors import install_error_handlers
from trackside.lifecycle.api.models import ERROR_RESPONSES
from trackside.lifecycle.wiring import LifecycleContext

API_ROUTERS = (
    deploy.router,
    jobs.router,
    info.router,
    gateway_auth.router,
    plugins_api.router,
    users.router,
    escs.router,
    auth_api.router,
    audit_api.router,
    settings_api.router,
    public_endpoints.router,
    move.router,
    # Views and actions the dashboard needs (also open to every other client).
    job_views.router,
    permissions.router,
    deployment_views.router,
    reconcile.router,
    audit_pages.router,
    call_stats.router,
    async_calls.router,
)
# Run before every route's own dependencies.
CHECKS = [Depends(refuse_nul_characters)]
DOCS_URL = "/lifecycle/docs"
OPENAPI_URL = "/lifecycle/openapi.json"
SWAGGER_ASSETS_URL = "/lifecycle/docs/assets"


log = logging.getLogger(__name__)


def _warm_up_job_listing(context: LifecycleContext) -> None:
    try:
        context.job_listing.warm_up(context.db)
    except Exception:  # only a head start: GET /job does the same work itself
        log.warning("warming up the job listing failed", exc_info=True)


def _without_422(openapi: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """FastAPI's document, less the 422 answers it adds to every route: ours is a 400 (`ApiError`)."""

    def document() -> dict[str, Any]:
        schema = openapi()  # built once, then cached by FastAPI: the edit below happens once
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        return schema

    return document


def create_app(context: LifecycleContext) -> FastAPI:
    """The app, for a process about to serve it: the job listing starts warming up in the background
    (here rather than in a lifespan handler, which `trackside up` runs without).

    The pipelines API (`/api/runs...`, chainr's, at the platform's root) sits above the lifecycle and
    mounts itself on this app (`trackside.pipelines.api.mount`): the lifecycle never imports it."""
    threading.Thread(target=_warm_up_job_listing, args=(context,), name="job-listing-warm-up", daemon=True).start()
    app = FastAPI(
        title="Trackside lifecycle API",
        docs_url=None,
        openapi_url=OPENAPI_URL,
        redoc_url=None,
    )
    app.state.context = context
    app.openapi = _without_422(app.openapi)  # type: ignore[method-assign]
    install_auth(app, context)
    install_error_handlers(app)
    for prefix in ("/lifecycle/api/v1", "/api/v1"):
        for router in API_ROUTERS:
            app.include_router(router, prefix=prefix, dependencies=CHECKS, responses=ERROR_RESPONSES)
    for prefix in ("/lifecycle", ""):
        app.include_router(info.probes, prefix=prefix)

    app.mount(SWAGGER_ASSETS_URL, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger-ui")

    @app.get(DOCS_URL, include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{SWAGGER_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_ASSETS_URL}/favicon-32x32.png",
        )

    @app.get("/", include_in_schema=False)
    @app.get("/lifecycle", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse(DOCS_URL)

    return app
