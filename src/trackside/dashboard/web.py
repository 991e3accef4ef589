"""What every dashboard page shares: the session, CSRF, rendering, form errors, flash messages,
errors as pages, and server-sent events.

A handler is `async def handler(page: Page) -> Response`, registered with `route(...)`, which
builds the `Page` (user, maintenance flag, CSRF token), enforces login and staff, and turns API
errors into redirects (401) or error pages (403, 404, 5xx).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from trackside.cli.client import ApiError, ApiUnreachable
from trackside.dashboard.client import Api
from trackside.gateway.forwarding import client_address

if TYPE_CHECKING:
    from trackside.dashboard.app import Dashboard

AUTH_COOKIE = "X-Racetrack-Auth"
CSRF_COOKIE = "trackside_csrf"
FLASH_COOKIE = "trackside_flash"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
COOKIE_MAX_AGE = 31 * 24 * 3600
BASE = "/dashboard"


class PageError(Exception):
    """Stop a handler and show an error page with this status and message."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


class Redirect(Exception):  # noqa: N818 - a control-flow signal, not an error
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


@dataclass
class FormState:
    """A form's submitted values and the API's errors, keyed by field ("" for the whole form)."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def value(self, name: str, default: Any = "") -> Any:
        return self.values.get(name, default)


def field_errors(message: str, fields: Sequence[str]) -> dict[str, str]:
    """Put an API error next to the field it names (`field: ...`, `'field'`), else on the whole form."""
    text = message.removeprefix("invalid request: ")
    for name in fields:
        if (
            text.startswith((f"{name}:", f"{name} ", f"body.{name}:", f"filter_{name}:"))
            or f"'{name}'" in text
            or f"field {name}" in text
        ):
            return {name: message}
    if len(fields) == 1:  # a one-field form: the error can only be about that field
        return {fields[0]: message}
    return {"": message}


def client_ip(dashboard: Dashboard, request: Request) -> str:
    """The browser's address, trusted from forwarding headers only as the lifecycle would trust them."""
    peer = request.client.host if request.client else "unknown"
    return client_address(peer, request.headers, dashboard.trusted_proxies, dashboard.gateway_secret)


class Page:
    """One request to the dashboard: who is asking, through which API client, and how to answer."""

    def __init__(self, dashboard: Dashboard, request: Request) -> None:
        self.dashboard = dashboard
        self.request = request
        raw = request.cookies.get(AUTH_COOKIE)
        self.token = unquote(raw).strip() if raw else None
        self.api = Api(
            dashboard.http(),
            dashboard.lifecycle_url,
            self.token,
            client_ip(dashboard, request),
            dashboard.gateway_secret,
        )
        self.user: dict[str, Any] | None = None
        self.maintenance = False
        existing = request.cookies.get(CSRF_COOKIE, "")
        self._new_csrf = not existing
        self.csrf = existing or secrets.token_urlsafe(24)
        self._cookies: list[tuple[str, str, int]] = []
        self.flash = unquote(request.cookies.get(FLASH_COOKIE, ""))[:500] or None

    @property
    def is_staff(self) -> bool:
        return bool(self.user and self.user.get("is_staff"))

    async def load(self, login: bool, staff: bool) -> None:
        if self.token:
            try:
                self.user, self.maintenance = await asyncio.gather(
                    self.api.get("/users/validate_user_auth"), self.dashboard.maintenance(self.api)
                )
            except ApiError as exc:
                if exc.status_code not in (401, 403):
                    raise
                self.user = None
                self.set_cookie(AUTH_COOKIE, "", 0)
        if login and self.user is None:
            path = self.request.url.path + (f"?{self.request.url.query}" if self.request.url.query else "")
            raise Redirect(f"{BASE}/login?next={quote(path, safe='')}")
        if staff and not self.is_staff:
            raise PageError(403, "This page is for staff: ask an administrator if you need it.")

    # -- forms ----------------------------------------------------------------------------------------

    async def form(self) -> FormData:
        """The submitted form, once its CSRF token matches the cookie's (403 otherwise)."""
        form = await self.request.form()
        sent = str(form.get(CSRF_FIELD) or self.request.headers.get(CSRF_HEADER) or "")
        cookie = self.request.cookies.get(CSRF_COOKIE, "")
        if not cookie or not hmac.compare_digest(sent, cookie):
            raise PageError(403, "The form expired or came from another site: reload the page and try again.")
        return form

    async def attempt(self, action: Awaitable[Any], state: FormState, fields: Sequence[str]) -> Any:
        """Run an API call for a form; on a refusal the user can fix (4xx, maintenance), record the
        error by its field and return None. Other errors propagate to the error page."""
        try:
            return await action
        except ApiError as exc:
            if exc.status_code in (400, 401, 403, 404, 409, 422, 429, 503):
                state.errors.update(field_errors(exc.message, fields))
                return None
            raise

    # -- answers --------------------------------------------------------------------------------------

    def set_cookie(self, name: str, value: str, max_age: int) -> None:
        self._cookies.append((name, value, max_age))

    def redirect(self, location: str, flash: str | None = None) -> Response:
        response = RedirectResponse(location, status_code=303)
        if flash:
            self.set_cookie(FLASH_COOKIE, quote(flash, safe=""), 60)
        return self.finish(response)

    def render(self, template: str, status_code: int = 200, **context: Any) -> Response:
        html = self.dashboard.render(template, page=self, **context)
        response = HTMLResponse(html, status_code=status_code)
        if self.flash:
            self.set_cookie(FLASH_COOKIE, "", 0)
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - self.started) * 1000:.1f}"
        return self.finish(response)

    def finish(self, response: Response) -> Response:
        secure = self.dashboard.secure_cookies
        if self._new_csrf:
            response.set_cookie(
                CSRF_COOKIE,
                self.csrf,
                max_age=COOKIE_MAX_AGE,
                path=BASE,
                httponly=True,
                samesite="strict",
                secure=secure,
            )
        for name, value, max_age in self._cookies:
            if max_age == 0:
                response.delete_cookie(name, path="/" if name == AUTH_COOKIE else BASE)
            else:
                path = "/" if name == AUTH_COOKIE else BASE
                response.set_cookie(
                    name, value, max_age=max_age, path=path, httponly=True, samesite="lax", secure=secure
                )
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    started: float = 0.0

    def url(self, path: str, **params: Any) -> str:
        query = urlencode({k: v for k, v in params.items() if v not in (None, "", False)})
        return f"{BASE}{path}" + (f"?{query}" if query else "")


Handler = Callable[[Page], Awaitable[Response]]


def route_handler(
    dashboard: Dashboard, handler: Handler, login: bool, staff: bool
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        page = Page(dashboard, request)
        page.started = time.perf_counter()
        try:
            await page.load(login, staff)
            return await handler(page)
        except Redirect as exc:
            return page.finish(RedirectResponse(exc.location, status_code=303))
        except PageError as exc:
            return page.render("error.html", status_code=exc.status_code, status=exc.status_code, message=exc.message)
        except ApiError as exc:
            if exc.status_code == 401:
                page.set_cookie(AUTH_COOKIE, "", 0)
                return page.finish(RedirectResponse(f"{BASE}/login", status_code=303))
            status = exc.status_code if 400 <= exc.status_code < 600 else 502
            return page.render("error.html", status_code=status, status=status, message=exc.message)
        except ApiUnreachable as exc:
            return page.render("error.html", status_code=502, status=502, message=exc.message)

    return endpoint


# -- server-sent events ---------------------------------------------------------------------------------


def sse_message(data: str, event: str | None = None) -> str:
    lines = [f"event: {event}"] if event else []
    lines += [f"data: {line}" for line in data.split("\n")]
    return "\n".join(lines) + "\n\n"


def sse_response(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        events, media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )


async def poll_changes(
    page: Page,
    fetch: Callable[[], Awaitable[Any]],
    render: Callable[[Any], str],
    interval: float,
    event: str,
    done: Callable[[Any], bool] | None = None,
) -> AsyncIterator[str]:
    """Poll `fetch` every `interval` seconds and send `render(value)` whenever the value changed;
    ends when the client leaves, the API refuses, or `done(value)` says there is nothing more to follow."""
    last: Any = object()
    idle = 0.0
    while not await page.request.is_disconnected():
        try:
            value = await fetch()
        except (ApiError, ApiUnreachable) as exc:
            yield sse_message(json.dumps({"error": exc.message}), "failed")
            return
        if value != last:
            last = value
            idle = 0.0
            yield sse_message(render(value), event)
            if done is not None and done(value):
                yield sse_message("", "end")
                return
        else:
            idle += interval
            if idle >= 15:
                idle = 0.0
                yield ": keepalive\n\n"
        await asyncio.sleep(interval)
