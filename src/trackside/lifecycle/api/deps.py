"""Request-scoped access to the lifecycle context and the caller."""

from __future__ import annotations

import threading
from urllib.parse import unquote

from fastapi import FastAPI, Request

from trackside.auth.bootstrap import ensure_first_admin
from trackside.auth.service import AuthService
from trackside.auth.subjects import Caller
from trackside.errors import Unauthorized
from trackside.lifecycle.governance import auth_service
from trackside.lifecycle.wiring import LifecycleContext

AUTH_COOKIE = "X-Racetrack-Auth"
_auth_lock = threading.Lock()


def get_context(request: Request) -> LifecycleContext:
    context: LifecycleContext = request.app.state.context
    return context


def caller_token(request: Request) -> str | None:
    """The caller's token, as Racetrack reads it: header first, then the legacy headers."""
    for header in ("x-racetrack-auth", "x-racetrack-user-auth", "x-racetrack-esc-auth"):
        value = request.headers.get(header)
        if value:
            return value
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    cookie = request.cookies.get(AUTH_COOKIE)
    if cookie:
        return unquote(cookie).strip() or None
    return None


def install_auth(app: FastAPI, context: LifecycleContext) -> AuthService:
    """Prepare auth for an app: the service (keys loaded), and the first admin of an empty store."""
    service = auth_service(context.settings, context.db)
    app.state.auth = service
    ensure_first_admin(context.db, context.settings.data_dir)
    return service


def get_auth(request: Request) -> AuthService:
    service: AuthService | None = getattr(request.app.state, "auth", None)
    if service is None:
        with _auth_lock:
            service = getattr(request.app.state, "auth", None)
            if service is None:
                service = install_auth(request.app, get_context(request))
    return service


def get_caller(request: Request) -> Caller:
    """The authenticated caller (401 without a live token); resolved once per request."""
    cached: Caller | None = getattr(request.state, "caller", None)
    if cached is not None:
        return cached
    caller = get_auth(request).resolve(caller_token(request))
    request.state.caller = caller
    return caller


def optional_caller(request: Request) -> Caller | None:
    """The caller if the request carries a live token; None without one (a bad token is still a 401)."""
    if caller_token(request) is None:
        return None
    return get_caller(request)


def caller_username(request: Request) -> str | None:
    """Who is calling, as recorded in deployments and the audit log (None for anonymous requests)."""
    try:
        caller = optional_caller(request)
    except Unauthorized:
        return None
    return caller.username if caller is not None else None
