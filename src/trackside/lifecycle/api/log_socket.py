"""Following a job's logs over Socket.IO at `/lifecycle/socket.io`, as `racetrack logs -f` does.

Racetrack's client connects, emits `subscribe_for_logs` `{resource_properties: {job_name,
job_version, tail}}` and prints each `logs_nextline` `{line}` it receives. The checks are those of the
SSE stream (`GET /job/{n}/{v}/logs/stream`): a live token is needed to connect, and `read_job` on the
job to subscribe. The token is read, in this order, from the connection's `auth` payload (`{"token":
...}`), the `X-Racetrack-Auth` header, `Authorization: Bearer ...`, `Authorization: Basic ...` (the
password; how an unchanged `racetrack` client sends one: from `~/.netrc`, see docs/racetrack-compat.md)
and the `X-Racetrack-Auth` cookie.

The Socket.IO server (python-socketio) is made on the first request to its path, so a platform that
never follows logs this way pays nothing for it. Only the long-polling transport is offered: in
`trackside up` every request comes through the gateway, which does not proxy protocol upgrades.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import unquote

from trackside.auth.subjects import Caller
from trackside.domain import JobDto
from trackside.errors import TracksideError, Unauthorized
from trackside.lifecycle import jobs
from trackside.lifecycle.governance import auth_service
from trackside.lifecycle.wiring import LifecycleContext

log = logging.getLogger(__name__)

SOCKETIO_PATH = "lifecycle/socket.io"

Scope_ = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope_, Receive, Send], Awaitable[None]]


def token_of(environ: dict[str, Any], auth: Any) -> str | None:
    """The token of a Socket.IO connection (see the module's docstring for the order)."""
    if isinstance(auth, dict):
        for key in ("token", "X-Racetrack-Auth"):
            value = auth.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
    for header in ("HTTP_X_RACETRACK_AUTH", "HTTP_X_RACETRACK_USER_AUTH", "HTTP_X_RACETRACK_ESC_AUTH"):
        value = environ.get(header)
        if value:
            return str(value).strip()
    scheme, _, credentials = str(environ.get("HTTP_AUTHORIZATION", "")).strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    if scheme.lower() == "basic" and credentials.strip():
        try:
            _user, _, password = base64.b64decode(credentials.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            password = ""
        if password:
            return password
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(str(environ.get("HTTP_COOKIE", "")))
    except Exception:  # a malformed Cookie header carries no token
        return None
    morsel = cookies.get("X-Racetrack-Auth")
    return unquote(morsel.value).strip() or None if morsel is not None else None


class LogSocket:
    """ASGI: `/lifecycle/socket.io` to the Socket.IO log stream (made on first use), the rest to `app`."""

    def __init__(self, app: ASGIApp, context: LifecycleContext) -> None:
        self.app = app
        self.context = context
        self._socketio: ASGIApp | None = None

    async def __call__(self, scope: Scope_, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope.get("path", "").startswith("/" + SOCKETIO_PATH):
            if self._socketio is None:
                self._socketio = self._make()
            await self._socketio(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _make(self) -> ASGIApp:
        import socketio

        context = self.context
        auth = auth_service(context.settings, context.db)
        sio = socketio.AsyncServer(async_mode="asgi", transports=["polling"], cors_allowed_origins=[])
        sessions: dict[str, str] = {}  # Socket.IO sid -> the log session it holds

        async def connect(sid: str, environ: dict[str, Any], data: Any = None) -> None:
            try:
                caller = await asyncio.to_thread(auth.resolve, token_of(environ, data))
            except Unauthorized as exc:
                raise socketio.exceptions.ConnectionRefusedError(exc.message) from None
            await sio.save_session(sid, {"caller": caller})

        async def subscribe_for_logs(sid: str, data: Any) -> dict[str, Any]:
            props = data.get("resource_properties") if isinstance(data, dict) else None
            if not isinstance(props, dict):
                return await _refuse(sid, "subscribe_for_logs: field 'resource_properties' is required")
            caller: Caller = (await sio.get_session(sid))["caller"]
            try:
                tail = int(props.get("tail") or 20)
                job = await asyncio.to_thread(
                    self._readable_job, str(props.get("job_name", "")), str(props.get("job_version", "")), caller
                )
            except (TracksideError, ValueError) as exc:
                return await _refuse(sid, exc.message if isinstance(exc, TracksideError) else str(exc))
            target = context.target(job.infrastructure_target)
            if target is None or target.logs_streamer is None:
                return await _refuse(sid, f"infrastructure target {job.infrastructure_target} cannot stream logs")
            streamer = target.logs_streamer
            loop = asyncio.get_running_loop()

            def on_next_line(_session: str, line: str) -> None:
                payload = {"line": line.rstrip("\n")}
                loop.call_soon_threadsafe(lambda: loop.create_task(sio.emit("logs_nextline", payload, to=sid)))

            resource = {"job_name": job.name, "job_version": job.version, "tail": str(max(tail, 0))}
            await asyncio.to_thread(streamer.create_session, sid, resource, on_next_line)
            sessions[sid] = job.infrastructure_target or ""
            return {"subscribed": True}

        async def _refuse(sid: str, message: str) -> dict[str, Any]:
            await sio.emit("logs_nextline", {"line": f"error: {message}"}, to=sid)
            loop = asyncio.get_running_loop()
            loop.call_later(0.5, lambda: loop.create_task(sio.disconnect(sid)))
            return {"error": message}

        async def disconnect(sid: str, *_reason: Any) -> None:
            target_name = sessions.pop(sid, None)
            if target_name is None:
                return
            target = context.target(target_name)
            if target is not None and target.logs_streamer is not None:
                await asyncio.to_thread(target.logs_streamer.close_session, sid)

        for event, handler in (
            ("connect", connect),
            ("subscribe_for_logs", subscribe_for_logs),
            ("disconnect", disconnect),
        ):
            sio.on(event, handler)
        app: ASGIApp = socketio.ASGIApp(sio, socketio_path=SOCKETIO_PATH)
        return app

    def _readable_job(self, name: str, version: str, caller: Caller) -> JobDto:
        """The job, if `caller` may read it (the SSE stream's check)."""
        return jobs.readable(self.context.db, caller, name, version, self.context.settings.pub_url)
