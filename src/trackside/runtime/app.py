"""The job application: routes requests to the user's class and to the runtime's own endpoints.

Routing is one dict lookup on the path (after stripping `/pub/job/{name}/{version}`) and one on
the method; everything a response needs that doesn't change per request (probe bodies, OpenAPI,
parameters) is encoded once. The user's class loads in a background thread while the server
already answers `/live` (two-stage start, as Racetrack's runner).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from .current_request import JobRequest, request_context, request_extra
from .docs import DOCS_HTML, build_openapi, examples_of, parameters_of
from .http import Handled, Handler, Request, Response
from .jsonify import dumps, to_json
from .loader import describe_error, load_job
from .logs import log_exception, log_info
from .metrics import Metrics
from .reqlog import RequestLog
from .settings import RuntimeSettings
from .signature import Signature
from .staticfiles import StaticFiles, parse_static_endpoints
from .webview import WsgiWebview, call_asgi, is_asgi
from .workers import Workers

API = "/api/v1"
QUIET_ROUTES = frozenset(("/live", "/ready", "/health", "/metrics"))
_perf = time.perf_counter
_HTML = b"text/html; charset=utf-8"
_PROMETHEUS = b"text/plain; version=0.0.4; charset=utf-8"


def error(status: int, message: str, type_name: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, dumps({"error": message, "type": type_name}), headers=headers)


class Endpoint:
    """A callable of the job's exposed over HTTP: perform or an auxiliary endpoint."""

    __slots__ = ("route", "fn", "is_async", "method", "sig")

    def __init__(self, route: str, fn: Callable[..., Any], method: str = "POST") -> None:
        self.route = route
        self.fn = fn
        self.method = method
        self.is_async = inspect.iscoroutinefunction(fn)
        self.sig = Signature(fn, route[len(API) + 1 :])


class LoadedJob:
    """Everything derived from the user's class, built once in the loader thread."""

    def __init__(self, instance: Any, settings: RuntimeSettings) -> None:
        # Where Racetrack's runner puts them: job code reads `self.request_context.get()`.
        for name, var in (("request_context", request_context), ("request_extra", request_extra)):
            with contextlib.suppress(AttributeError, TypeError):  # __slots__ without room: module-level vars remain
                setattr(instance, name, var)
        perform = getattr(instance, "perform", None)
        self.instance = instance
        # perform is optional (as in Racetrack): a class may offer only auxiliary endpoints or a webview.
        self.perform: Endpoint | None = Endpoint(API + "/perform", perform) if callable(perform) else None
        self.endpoints: list[Endpoint] = [self.perform] if self.perform is not None else []
        for path, method, fn in _aux_endpoints(instance):
            self.endpoints.append(Endpoint(API + path, fn, method))
        statics = getattr(instance, "static_endpoints", None)
        self.static: StaticFiles = parse_static_endpoints(statics()) if callable(statics) else StaticFiles()
        self.webview_static = StaticFiles()
        self.webview: Any = None
        self.webview_asgi = False
        factory = getattr(instance, "webview_app", None)
        if callable(factory):
            base_url = f"/pub/job/{settings.job_name}/{settings.job_version}{API}/webview"
            app = factory(base_url)
            if app is not None:  # Racetrack's base class returns None: no webview
                self.webview_asgi = is_asgi(app)
                self.webview = app if self.webview_asgi else WsgiWebview(app, base_url, settings.webview_wsgi_paths)
                import os

                if os.path.isdir("static"):
                    self.webview_static.add(API + "/webview/static", "static")
        user_metrics = getattr(instance, "metrics", None)
        self.user_metrics: Callable[[], Any] | None = user_metrics if callable(user_metrics) else None
        self.parameters = to_json(parameters_of(self.perform.fn) if self.perform is not None else [])
        examples = examples_of(instance)
        openapi = build_openapi(
            title=settings.job_name or type(instance).__name__,
            version=settings.job_version,
            job_doc=inspect.getdoc(type(instance)) or "",
            perform=perform if self.perform is not None else None,
            examples=examples,
            aux=[(e.route[len(API) :], e.method, e.fn) for e in self.endpoints if e is not self.perform],
            static_routes=self.static.routes(),
            has_webview=self.webview is not None,
        )
        self.openapi = to_json(openapi)


def _aux_endpoints(instance: Any) -> list[tuple[str, str, Callable[..., Any]]]:
    """(path, method, handler) from `auxiliary_endpoints()` and `auxiliary_endpoints_v2()`."""
    found: list[tuple[str, str, Callable[..., Any]]] = []
    v1 = getattr(instance, "auxiliary_endpoints", None)
    if callable(v1):
        mapping = v1()
        if not isinstance(mapping, dict):
            raise TypeError(f"auxiliary_endpoints() must return a dict {{path: method}}, got {type(mapping).__name__}")
        for path, fn in mapping.items():
            if not isinstance(path, str) or not callable(fn):
                raise TypeError(f"auxiliary_endpoints(): entry {path!r} must map a path string to a callable")
            found.append(("/" + path.lstrip("/"), "POST", fn))
    v2 = getattr(instance, "auxiliary_endpoints_v2", None)
    if callable(v2):
        for index, entry in enumerate(v2() or []):

            def get(key: str, entry: Any = entry) -> Any:
                return entry.get(key) if isinstance(entry, dict) else getattr(entry, key, None)

            path, method, fn = get("path"), (get("method") or "POST"), get("handler")
            if not isinstance(path, str) or not callable(fn):
                raise TypeError(f"auxiliary_endpoints_v2()[{index}] needs a string 'path' and a callable 'handler'")
            method = str(method).upper()
            if method not in ("GET", "POST"):
                raise TypeError(
                    f"auxiliary_endpoints_v2()[{index}] ({path}): method must be GET or POST, got {method!r}"
                )
            found.append(("/" + path.lstrip("/"), method, fn))
    for path, _, _ in found:
        if path in ("/perform", "/parameters"):
            raise TypeError(f"auxiliary endpoint {path!r} clashes with a built-in endpoint")
    return found


class JobApp:
    def __init__(self, settings: RuntimeSettings, entrypoint_path: str, entrypoint_class: str | None) -> None:
        self.s = settings
        self.entrypoint_path = entrypoint_path
        self.entrypoint_class = entrypoint_class
        self.metrics = Metrics()
        self.log = (
            RequestLog(settings.log_caller_name, structured=settings.log_structured) if settings.log_requests else None
        )
        self.pool = Workers(settings.thread_pool_size)
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # set by start()
        self.server_addr = (settings.host, settings.port)
        self.job: LoadedJob | None = None
        self.error: str | None = None
        self.sem: asyncio.Semaphore | None = None
        self.waiting = 0
        self.inline = settings.inline_sync
        self.loaded = threading.Event()
        ts = settings.deployment_timestamp
        self._live_ok = dumps({"live": True, "deployment_timestamp": ts})
        self._ready_ok = dumps({"ready": True})
        self._ready_no = dumps({"ready": False})
        self._docs = DOCS_HTML.encode()
        self.routes: dict[str, dict[str, Handler]] = self._base_routes()

    # lifecycle ----------------------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind to the loop and load the job in a background thread."""
        self.loop = loop
        self.pool.loop = loop
        if self.log is not None:
            self.log.loop = loop
        if self.s.max_concurrency is not None:
            self.sem = asyncio.Semaphore(self.s.max_concurrency)
        threading.Thread(target=self._load, name="job-loader", daemon=True).start()

    def _load(self) -> None:
        started = time.monotonic()
        try:
            instance = load_job(self.entrypoint_path, self.entrypoint_class)
            job = LoadedJob(instance, self.s)
        except BaseException as exc:
            self.error = describe_error(exc)
            log_exception(f"job failed to load: {self.error}", exc, self.s.log_structured)
            sys.stderr.flush()
            self.loaded.set()
            return
        routes = self._base_routes()
        if job.perform is None:
            routes[API + "/perform"] = {"POST": self._no_perform}
        for ep in job.endpoints:
            routes[ep.route] = {ep.method: self._endpoint_handler(ep)}
        routes[API + "/parameters"] = {"GET": self._parameters}
        routes["/openapi.json"] = {"GET": self._openapi}
        self.job = job
        self.routes = routes  # one reference swap: the loop sees the old or the new table
        self.loaded.set()
        loaded_in = time.monotonic() - started
        log_info(f"job {type(job.instance).__name__} loaded in {loaded_in:.2f}s", self.s.log_structured)

    def _base_routes(self) -> dict[str, dict[str, Handler]]:
        not_ready: dict[str, Handler] = {"GET": self._not_ready, "POST": self._not_ready}
        return {
            "/live": {"GET": self._live},
            "/ready": {"GET": self._ready},
            "/health": {"GET": self._health},
            "/metrics": {"GET": self._metrics},
            "/docs": {"GET": self._docs_page},
            "/": {"GET": self._root},
            "/openapi.json": not_ready,
            API + "/perform": not_ready,
            API + "/parameters": not_ready,
        }

    # routing ------------------------------------------------------------------------------------
    def handle(self, req: Request) -> Handled:
        req.started = _perf()
        path = req.path
        if path.startswith("/pub/"):
            self._strip_prefix(req, path)
        table = self.routes.get(req.route)
        if table is not None:
            handler = table.get(req.method)
            if handler is not None:
                return handler(req)
            if req.method == "HEAD" and "GET" in table:
                return table["GET"](req)
            if req.method == "OPTIONS":
                return self._options(req)
            allowed = ", ".join(sorted(table))
            return error(
                405,
                f"method {req.method} not allowed on {req.route} (allowed: {allowed})",
                "MethodNotAllowed",
                [("allow", allowed)],
            )
        if req.method == "OPTIONS":
            return self._options(req)
        if req.route.startswith(API + "/"):
            return self._api_prefix(req)
        return error(404, f"no such endpoint: {req.method} {req.path}", "NotFound")

    def _strip_prefix(self, req: Request, path: str) -> None:
        """`/pub/job/{name}/{version}/rest` (or `/pub/fatman/...`) → base and route `/rest`."""
        parts = path.split("/", 5)
        if len(parts) < 5 or parts[2] not in ("job", "fatman") or not parts[4]:
            return
        if self.s.job_name and parts[3] != self.s.job_name:
            return
        req.base = "/".join(parts[:5])
        req.route = "/" + parts[5] if len(parts) == 6 else "/"

    def _api_prefix(self, req: Request) -> Handled:
        job = self.job
        if job is None:
            return self._not_ready(req)
        route = req.route
        if req.method in ("GET", "HEAD"):
            resp = job.static.serve(route)
            if resp is not None:
                return resp
        if route == API + "/webview" or route.startswith(API + "/webview/"):
            if req.method in ("GET", "HEAD") and route.startswith(API + "/webview/static/"):
                resp = job.webview_static.serve(route)
                if resp is not None:
                    return resp
            if job.webview is not None:
                return self._webview(req, job)
        return error(404, f"no such endpoint: {req.method} {req.path}", "NotFound")

    def on_response(self, req: Request, resp: Response) -> None:
        """Called on the loop thread for every response: metrics and the access log."""
        if req.endpoint is not None:
            self.metrics.done(req.endpoint, _perf() - req.started, resp.status)
        if self.log is not None and req.route not in QUIET_ROUTES:
            self.log.request(req.method, req.target, resp.status, _perf() - req.started, req.headers)

    # probes -------------------------------------------------------------------------------------
    def _live(self, req: Request) -> Response:
        if self.error is not None:
            body = {"live": False, "error": self.error, "deployment_timestamp": self.s.deployment_timestamp}
            return Response(500, dumps(body))
        return Response(200, self._live_ok)

    def _ready(self, req: Request) -> Response:
        return Response(200, self._ready_ok) if self.job is not None else Response(500, self._ready_no)

    def _health(self, req: Request) -> Response:
        live = self.error is None
        ready = self.job is not None
        s = self.s
        body = {
            "service": "job",
            "job_name": s.job_name,
            "job_version": s.job_version,
            "live": live,
            "ready": ready,
            "status": "pass" if live and ready else "fail",
            "error": self.error,
            "git_version": s.git_version,
            "deployed_by_racetrack_version": s.deployed_by_racetrack_version,
            "deployment_timestamp": s.deployment_timestamp,
            "job_type_version": s.job_type_version,
        }
        return Response(200 if live and ready else 500, dumps(body))

    def _metrics(self, req: Request) -> Response:
        job = self.job
        text = self.metrics.render(job.user_metrics if job is not None else None)
        return Response(200, text.encode(), _PROMETHEUS)

    def _not_ready(self, req: Request) -> Response:
        if self.error is not None:
            return error(500, f"the job failed to load: {self.error}", "JobLoadError")
        return error(503, "the job is still loading; retry shortly (see /ready)", "Unavailable", [("retry-after", "1")])

    def _no_perform(self, req: Request) -> Response:
        job = self.job
        assert job is not None
        offered = [f"{e.method} {e.route}" for e in job.endpoints]
        if job.webview is not None:
            offered.append(f"GET {API}/webview/")
        offered += [f"GET {route}" for route in job.static.routes()]
        listing = ", ".join(offered) if offered else "none besides the probes"
        return error(
            404,
            f"job class {type(job.instance).__name__} has no perform() method, so {API}/perform is not offered; "
            f"its endpoints: {listing}",
            "NotFound",
        )

    # docs ---------------------------------------------------------------------------------------
    def _docs_page(self, req: Request) -> Response:
        return Response(200, self._docs, _HTML)

    def _openapi(self, req: Request) -> Response:
        assert self.job is not None
        return Response(200, self.job.openapi)

    def _parameters(self, req: Request) -> Response:
        assert self.job is not None
        return Response(200, self.job.parameters)

    def _root(self, req: Request) -> Response:
        home = self.s.home_page.strip()
        if home.startswith(("http://", "https://")):
            location = home
        else:
            target = home.lstrip("/") or "docs"
            if not req.path.endswith("/"):  # `/pub/job/x/1` → relative to its last segment
                target = req.path.rsplit("/", 1)[-1] + "/" + target
            location = target
        return Response(302, b"", b"text/plain", [("location", location)])

    def _options(self, req: Request) -> Response:
        headers = [
            ("access-control-allow-methods", "GET, POST, PUT, DELETE, OPTIONS, HEAD"),
            ("access-control-allow-headers", req.headers.get("access-control-request-headers", "*")),
            ("access-control-max-age", "600"),
            ("allow", "GET, POST, OPTIONS, HEAD"),
        ]
        return Response(204, b"", b"text/plain", headers)

    # calling the job ----------------------------------------------------------------------------
    def _endpoint_handler(self, ep: Endpoint) -> Handler:
        sig = ep.sig
        checks = bool(sig.checks)
        if ep.method == "GET":

            def handler(req: Request) -> Handled:
                req.endpoint = ep.route
                self.metrics.started(ep.route)
                kwargs = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(req.query).items()}
                return self._call(ep, kwargs, req)
        else:

            def handler(req: Request) -> Handled:
                req.endpoint = ep.route
                self.metrics.started(ep.route)
                body = req.body
                if not body:
                    kwargs: Any = {}
                else:
                    try:
                        kwargs = json.loads(body.decode())  # str input skips json's encoding sniffing
                    except ValueError as exc:  # UnicodeDecodeError included
                        return error(400, f"request body is not valid JSON: {exc}", "InvalidInput")
                    if type(kwargs) is not dict:
                        return error(
                            400,
                            "request body must be a JSON object with the arguments of "
                            f"{ep.route.rsplit('/', 1)[-1]}, got {type(kwargs).__name__}",
                            "InvalidInput",
                        )
                    if checks:
                        problem = sig.check(kwargs)
                        if problem is not None:
                            return error(400, problem, "InvalidInput")
                return self._call(ep, kwargs, req)

        return handler

    def _call(self, ep: Endpoint, kwargs: dict[str, Any], req: Request) -> Handled:
        if self.sem is not None:
            return self.loop.create_task(self._limited(ep, kwargs, req))
        if ep.is_async:
            return self.loop.create_task(self._run_async(ep, kwargs, req))
        if self.inline:
            return self._run_sync(ep, kwargs, req)
        return self.pool.submit(self._run_sync, ep, kwargs, req)

    async def _limited(self, ep: Endpoint, kwargs: dict[str, Any], req: Request) -> Response:
        sem = self.sem
        assert sem is not None
        if sem.locked():
            queue = self.s.max_concurrency_queue
            if queue is not None and self.waiting >= queue:
                return error(
                    429,
                    f"too many requests: {self.s.max_concurrency} running and {self.waiting} "
                    "queued (max_concurrency_queue reached); retry later",
                    "TooManyRequests",
                )
            self.waiting += 1
            try:
                await sem.acquire()
            finally:
                self.waiting -= 1
        else:
            await sem.acquire()
        try:
            if ep.is_async:
                return await self._run_async(ep, kwargs, req)
            response: Response = await self.pool.submit(self._run_sync, ep, kwargs, req)
            return response
        finally:
            sem.release()

    def _run_sync(self, ep: Endpoint, kwargs: dict[str, Any], req: Request) -> Response:
        token = request_context.set(JobRequest(req))
        try:
            result = ep.fn(**kwargs)
        except TypeError as exc:
            return _type_error(ep, kwargs, exc, self.s.log_structured)
        except (Exception, SystemExit) as exc:  # sys.exit() in job code fails the call, not the job
            return _user_error(ep, exc, self.s.log_structured)
        finally:
            request_context.reset(token)
        return _result(ep, result)

    async def _run_async(self, ep: Endpoint, kwargs: dict[str, Any], req: Request) -> Response:
        request_context.set(JobRequest(req))  # each task runs in its own context copy
        try:
            result = await ep.fn(**kwargs)
        except TypeError as exc:
            return _type_error(ep, kwargs, exc, self.s.log_structured)
        except (Exception, SystemExit) as exc:
            return _user_error(ep, exc, self.s.log_structured)
        return _result(ep, result)

    # webview ------------------------------------------------------------------------------------
    def _webview(self, req: Request, job: LoadedJob) -> Handled:
        mount = req.base + API + "/webview"
        rest = req.route[len(API + "/webview") :]
        if not rest:
            return Response(
                307, b"", b"text/plain", [("location", "webview/" + (("?" + req.query) if req.query else ""))]
            )
        if job.webview_asgi:
            return self.loop.create_task(self._asgi(job.webview, req, mount))
        return self.pool.submit(self._wsgi, job.webview, req, mount, rest)

    async def _asgi(self, app: Any, req: Request, mount: str) -> Response:
        request_context.set(JobRequest(req))  # the task's own context copy
        return await call_asgi(app, req, mount, self.server_addr)

    def _wsgi(self, webview: WsgiWebview, req: Request, mount: str, rest: str) -> Response:
        token = request_context.set(JobRequest(req))
        try:
            return webview(req, mount, rest, self.server_addr)
        finally:
            request_context.reset(token)


def _type_error(ep: Endpoint, kwargs: dict[str, Any], exc: TypeError, structured: bool) -> Response:
    """400 when the arguments don't fit the signature, 500 when user code raised the TypeError.

    Calling first and checking the binding only on TypeError is equivalent to binding first:
    Python rejects a call whose arguments don't bind before running any of the function's body.
    """
    problem = ep.sig.describe_binding_error(kwargs)
    if problem is not None:
        return error(400, problem, "InvalidInput")
    return _user_error(ep, exc, structured)


def _user_error(ep: Endpoint, exc: BaseException, structured: bool = False) -> Response:
    log_exception(f"error in {ep.route}: {type(exc).__name__}: {exc}", exc, structured)
    return error(500, str(exc), type(exc).__name__)


def _result(ep: Endpoint, result: Any) -> Response:
    try:
        return Response(200, to_json(result))
    except Exception as exc:
        return error(500, f"the result of {ep.route} is not JSON-serialisable: {exc}", "SerializationError")
