"""The dashboard's ASGI app, how `trackside up` mounts it beside the lifecycle API, and
`trackside serve dashboard`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from http.cookiejar import Cookie, CookieJar
from pathlib import Path
from typing import Any

import httpx
import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from trackside.dashboard.client import Api
from trackside.dashboard.web import BASE, Handler, route_handler
from trackside.gateway.forwarding import TrustedProxies

HERE = Path(__file__).parent
MAINTENANCE_TTL_S = 2.0

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def ago(moment: float | int | str | None) -> str:
    """ "3 minutes ago" for unix seconds or an ISO time."""
    if moment in (None, ""):
        return "never"
    if isinstance(moment, str):
        parsed = datetime.fromisoformat(moment)
        seconds = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()  # stored as UTC
    else:
        seconds = float(moment)
    delta = int(time.time() - seconds)
    if delta < 0:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if delta >= size:
            count = delta // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return f"{delta} second{'s' if delta != 1 else ''} ago"


def iso(moment: float | int | None) -> str:
    if moment is None:
        return ""
    return datetime.fromtimestamp(float(moment), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class _NoCookies(CookieJar):
    """A cookie jar that keeps nothing."""

    def set_cookie(self, cookie: Cookie) -> None:
        return None

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


class Dashboard:
    """Settings, templates and the shared HTTP pool of one dashboard app."""

    def __init__(
        self,
        lifecycle_url: str = "",
        pub_url: str | None = None,
        secure_cookies: bool = False,
        trusted_proxies: TrustedProxies | None = None,
        gateway_secret: str | None = None,
    ) -> None:
        # In `trackside up` the lifecycle URL is known only once its port is bound: set it then.
        self.lifecycle_url = lifecycle_url
        # Who may say who the browser is (forwarding headers): operator-trusted proxies, and in `up`
        # the platform's own gateway, which proves itself with the secret it shares with the lifecycle.
        self.trusted_proxies = trusted_proxies or TrustedProxies()
        self.gateway_secret = gateway_secret
        # Base of job URLs in links ("/pub" when served beside the gateway); None: ask the API's /info.
        self.pub_url = pub_url
        self.secure_cookies = secure_cookies
        self.gateway_health_url: str | None = None
        self._http: httpx.AsyncClient | None = None
        self._maintenance: tuple[float, bool] = (0.0, False)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters.update(ago=ago, iso=iso, pairs=lambda values: [(v, v) for v in values])
        self.templates.globals.update(BASE=BASE)

    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            # One pool serves every user: it must never keep a cookie (the API's login answer sets
            # one) and send it with another user's request.
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(300, connect=10), limits=httpx.Limits(max_connections=50), cookies=_NoCookies()
            )
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def render(self, template: str, **context: Any) -> str:
        return self.templates.get_template(template).render(**context)

    async def maintenance(self, api: Api) -> bool:
        """Whether maintenance mode is on (asked at most every MAINTENANCE_TTL_S, for the banner)."""
        checked, value = self._maintenance
        if time.monotonic() - checked < MAINTENANCE_TTL_S:
            return value
        value = bool((await api.get("/settings/maintenance")).get("maintenance_mode"))
        self._maintenance = (time.monotonic(), value)
        return value

    def forget_maintenance(self) -> None:
        self._maintenance = (0.0, False)

    async def job_pub_base(self, api: Api) -> str:
        if self.pub_url is None:
            info = await api.get("/info")
            self.pub_url = str(info.get("external_pub_url") or "").rstrip("/")
        return self.pub_url


Routes = list[tuple[str, str, Handler, bool, bool]]  # method, path, handler, login, staff


def create_dashboard_app(dashboard: Dashboard) -> Starlette:
    from trackside.dashboard.views import all_routes

    routes: list[Route | Mount] = []
    for method, path, handler, login, staff in all_routes():
        routes.append(Route(BASE + path, route_handler(dashboard, handler, login, staff), methods=[method]))
    routes.append(Mount(f"{BASE}/static", app=StaticFiles(directory=HERE / "static"), name="static"))

    async def home(_request: Request) -> Response:
        return RedirectResponse(f"{BASE}/jobs", status_code=307)

    routes.append(Route(BASE, home))
    routes.append(Route(f"{BASE}/", home))
    app = Starlette(routes=routes)
    app.state.dashboard = dashboard
    return app


def mount_dashboard(lifecycle_app: ASGIApp, dashboard_app: ASGIApp) -> ASGIApp:
    """One ASGI app: `/dashboard...` to the dashboard, `/` redirected there, the rest to the lifecycle."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            path: str = scope.get("path", "")
            if path == "/":
                await RedirectResponse(f"{BASE}/jobs", status_code=307)(scope, receive, send)
                return
            if path == BASE or path.startswith(BASE + "/"):
                await dashboard_app(scope, receive, send)
                return
        await lifecycle_app(scope, receive, send)

    return app


def run_dashboard(
    lifecycle_url: str,
    host: str,
    port: int,
    pub_url: str | None,
    log_level: str,
    trusted_proxies: TrustedProxies | None = None,
) -> None:
    """`trackside serve dashboard`: the dashboard alone, a client of the lifecycle at `lifecycle_url`.

    The lifecycle believes the browser addresses it passes on only if this host is one of the
    lifecycle's `trusted_proxies` (docs/security.md)."""
    import uvicorn

    dashboard = Dashboard(lifecycle_url, pub_url=pub_url or None, trusted_proxies=trusted_proxies)
    dashboard_app = create_dashboard_app(dashboard)

    async def not_here(scope: Scope, receive: Receive, send: Send) -> None:
        await Response("not found: this process serves only the dashboard at /dashboard", 404)(scope, receive, send)

    app = mount_dashboard(not_here, dashboard_app)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    print(f"trackside dashboard listening on http://{host}:{port}{BASE} (lifecycle {lifecycle_url})", flush=True)
    server.run()
