"""Minimal WSGI and ASGI (http only) bridges for the job's `webview_app(base_url)`.

The app is mounted at `/api/v1/webview`. ASGI apps get `root_path` = the mount path and `path` = the
full path, as the ASGI spec, current Starlette and Racetrack's runner give them.

WSGI apps are written two ways, and both work (docs/racetrack-compat.md, "Webviews"):
- to the WSGI spec: routes relative to the mount (`@app.route('/')`), reading SCRIPT_NAME = the
  mount path and PATH_INFO = the rest ("mount" paths);
- to Racetrack's runner, whose middleware rewrites PATH_INFO to the full
  `/pub/job/NAME/VERSION/api/v1/webview/...` path built from `base_url`, with routes such as
  `@app.route(base_url + '/')` ("full" paths; SCRIPT_NAME is then empty, so URLs the app builds
  from its routes are right too).
`JOB_WEBVIEW_WSGI_PATHS` picks one (`mount` or `full`); by default (`auto`) a request is first given
mount paths, and when the app answers 404 it is asked again with full paths. The first answer other
than 404 settles which kind the app is, for the life of the process, so from then on each request
is one call. Responses are collected whole: webviews are pages, not streams.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from .http import Request, Response


def is_asgi(app: Any) -> bool:
    """ASGI apps are `async def app(scope, receive, send)` (or objects whose __call__ is)."""
    if inspect.isfunction(app) or inspect.ismethod(app):
        call = app
    elif callable(app):
        call = app.__call__
    else:
        return False
    if not (inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(app)):
        return False
    try:
        params = [
            p
            for p in inspect.signature(call).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return True
    return len(params) == 3


def _header_list(req: Request) -> list[tuple[str, str]]:
    return list(req.headers.items())


class WsgiWebview:
    """A WSGI webview app and which paths it routes on (`mount` or `full`, None until known)."""

    def __init__(self, app: Callable[..., Any], base_url: str, paths: str = "auto") -> None:
        self.app = app
        self.base_url = base_url
        self.paths: str | None = None if paths == "auto" else paths

    def __call__(self, req: Request, mount: str, rest: str, server: tuple[str, int]) -> Response:
        """Serve one request (in a worker thread)."""
        paths = self.paths
        if paths == "mount":
            return call_wsgi(self.app, req, mount, rest, server)
        if paths == "full":
            return call_wsgi(self.app, req, "", self.base_url + rest, server)
        relative = call_wsgi(self.app, req, mount, rest, server)
        if relative.status != 404:
            self.paths = "mount"
            return relative
        full = call_wsgi(self.app, req, "", self.base_url + rest, server)
        if full.status != 404:
            self.paths = "full"
            return full
        return relative


def call_wsgi(
    app: Callable[..., Any], req: Request, script_name: str, path_info: str, server: tuple[str, int]
) -> Response:
    """Run a WSGI app for one request (in a worker thread) and collect its response."""
    host = req.headers.get("host", f"{server[0]}:{server[1]}")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": req.method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "REQUEST_URI": script_name + path_info + (("?" + req.query) if req.query else ""),
        "QUERY_STRING": req.query,
        "SERVER_NAME": host.split(":")[0],
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": req.version,
        "REMOTE_ADDR": "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(req.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(req.body)) if req.body else "",
        "CONTENT_TYPE": req.headers.get("content-type", ""),
    }
    for name, value in req.headers.items():
        if name in ("content-type", "content-length"):
            continue
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    state: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None and state.get("sent"):
            raise exc_info[1].with_traceback(exc_info[2])
        state["status"] = status
        state["headers"] = headers
        return chunks.append

    chunks: list[bytes] = []
    result = app(environ, start_response)
    try:
        for chunk in result:
            if chunk:
                chunks.append(chunk)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status = int(str(state.get("status", "500")).split(" ", 1)[0])
    return _response(status, state.get("headers", []), b"".join(chunks))


def _response(status: int, headers: list[tuple[str, str]], body: bytes) -> Response:
    content_type = b"text/plain"
    extra: list[tuple[str, str]] = []
    for name, value in headers:
        lname = name.lower()
        if lname == "content-type":
            content_type = value.encode("latin-1")
        elif lname not in ("content-length", "transfer-encoding", "connection", "server", "date"):
            extra.append((name, value))
    return Response(status, body, content_type, extra or None)


async def call_asgi(app: Callable[..., Any], req: Request, mount: str, server: tuple[str, int]) -> Response:
    """Run an ASGI app for one http request and collect its response."""
    raw_path = req.target.split("?", 1)[0]
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": req.version[5:],
        "method": req.method,
        "scheme": "http",
        "path": unquote(raw_path),
        "raw_path": raw_path.encode("latin-1", "replace"),
        "root_path": mount,
        "query_string": req.query.encode("latin-1", "replace"),
        "headers": [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in req.headers.items()],
        "client": None,
        "server": server,
        "state": {},
    }
    sent_body = False
    status: int | None = None
    headers: list[tuple[str, str]] = []
    chunks: list[bytes] = []
    done = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": req.body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        kind = message.get("type")
        if kind == "http.response.start":
            status = int(message["status"])
            for name, value in message.get("headers", []):
                headers.append((bytes(name).decode("latin-1"), bytes(value).decode("latin-1")))
        elif kind == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                done.set()

    try:
        await app(scope, receive, send)
    finally:
        done.set()
    if status is None:
        raise RuntimeError("the ASGI webview app returned without starting a response")
    return _response(status, headers, b"".join(chunks))
