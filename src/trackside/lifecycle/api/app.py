"""The lifecycle's ASGI app: routes mounted under `/lifecycle/api/v1` and, as Racetrack, `/api/v1`."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from trackside.lifecycle.api import audit as audit_api
from trackside.lifecycle.api import auth as auth_api
from trackside.lifecycle.api import deploy, escs, gateway_auth, info, jobs, move, public_endpoints, users
from trackside.lifecycle.api import plugins as plugins_api
from trackside.lifecycle.api import settings as settings_api
from trackside.lifecycle.api.deps import install_auth
from trackside.lifecycle.api.errors import install_error_handlers
from trackside.lifecycle.context import LifecycleContext

API_ROUTERS = (deploy.router, jobs.router, info.router, gateway_auth.router, plugins_api.router,
               users.router, escs.router, auth_api.router, audit_api.router, settings_api.router,
               public_endpoints.router, move.router)


def create_app(context: LifecycleContext) -> FastAPI:
    app = FastAPI(
        title="Trackside lifecycle API",
        docs_url="/lifecycle/docs",
        openapi_url="/lifecycle/openapi.json",
        redoc_url=None,
    )
    app.state.context = context
    install_auth(app, context)
    install_error_handlers(app)
    for prefix in ("/lifecycle/api/v1", "/api/v1"):
        for router in API_ROUTERS:
            app.include_router(router, prefix=prefix)
    for prefix in ("/lifecycle", ""):
        app.include_router(info.probes, prefix=prefix)

    @app.get("/", include_in_schema=False)
    @app.get("/lifecycle", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/lifecycle/docs")

    return app
