"""Running the platform: every component in one process (`trackside up`) or one alone (`serve`).

In `up`, the gateway is the front door on the configured port: `/pub/...` goes to jobs and every
other path is proxied to the lifecycle API, which listens on an internal loopback port of the same
process. The same gateway code runs alone in `serve gateway`, pointed at `lifecycle_url`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import socket
import threading
from typing import TYPE_CHECKING, Any

import uvicorn

from trackside.config import Settings
from trackside.errors import InvalidInput

if TYPE_CHECKING:
    from fastapi import FastAPI

    from trackside.lifecycle.wiring import LifecycleContext
    from trackside.pipelines.service import PipelineService

log = logging.getLogger("trackside")

COMPONENTS = ("lifecycle", "gateway", "supervisor", "dashboard")


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


class LifecycleServer:
    """The lifecycle API on uvicorn, in a thread of its own so slow requests never stall the gateway."""

    def __init__(self, app: Any, host: str, port: int, log_level: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            raise InvalidInput(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        # Listen now: connections that arrive before uvicorn starts wait in the backlog instead
        # of being refused.
        self.sock.listen(2048)
        self.port = self.sock.getsockname()[1]
        # No proxy_headers: uvicorn would believe X-Forwarded-For from any loopback peer, and every
        # local job is one. The login throttle reads the forwarding headers itself, from the
        # platform's own gateway and operator-trusted proxies only (lifecycle.api.users.client_address).
        config = uvicorn.Config(
            app, log_level=log_level, access_log=False, lifespan="off", timeout_graceful_shutdown=3, proxy_headers=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="lifecycle-api", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.new_event_loop()


def _wait_for_signal(loop: asyncio.AbstractEventLoop) -> asyncio.Event:
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def advertise_lifecycle_url(settings: Settings, listening: str) -> None:
    """The lifecycle URL `/api/v1/info` reports: the operator's `lifecycle_url` when set, else where this
    process listens (the default names port 7070, whatever `--port` chose)."""
    if "lifecycle_url" not in settings.model_fields_set:
        settings.lifecycle_url = listening


def lifecycle_and_pipelines_app(context: LifecycleContext, pipelines: PipelineService) -> FastAPI:
    """The lifecycle's app with the pipelines API mounted on it (the pipelines sit above the lifecycle,
    so the two meet here rather than in either)."""
    from trackside.lifecycle.api.app import create_app
    from trackside.pipelines.api import mount

    app = create_app(context)
    mount(app, pipelines)
    return app


def run_platform(settings: Settings) -> None:
    """`trackside up`: lifecycle API, deploy workers, supervisor, gateway and dashboard in one process."""
    from trackside.dashboard.app import Dashboard, create_dashboard_app, mount_dashboard
    from trackside.gateway.async_calls import AsyncCalls
    from trackside.gateway.call_reporter import CallReporter
    from trackside.gateway.forwarding import TrustedProxies
    from trackside.gateway.resolver import LifecycleResolver
    from trackside.gateway.server import GatewayServer, RequestLimits
    from trackside.lifecycle.api.log_socket import LogSocket
    from trackside.lifecycle.supervisor import Supervisor
    from trackside.lifecycle.wiring import LifecycleContext
    from trackside.pipelines.service import PipelineService

    configure_logging(settings)
    context = LifecycleContext.create(settings)
    context.start_deploy_worker()
    pipelines = PipelineService(settings, context.db, context.plugins)
    # Proves to the lifecycle that a request's forwarding headers were written by this gateway.
    gateway_secret = secrets.token_urlsafe(32)
    lifecycle_app = lifecycle_and_pipelines_app(context, pipelines)
    lifecycle_app.state.gateway_secret = gateway_secret
    # The dashboard shares the lifecycle's internal server (the gateway forwards non-/pub paths there)
    # and calls its API over loopback like any client; its URL is known once the port is bound.
    dashboard = Dashboard(
        pub_url="/pub", trusted_proxies=TrustedProxies(settings.trusted_proxies), gateway_secret=gateway_secret
    )
    app = LogSocket(mount_dashboard(lifecycle_app, create_dashboard_app(dashboard)), context)
    lifecycle = LifecycleServer(app, "127.0.0.1", 0, settings.log_level)
    supervisor = Supervisor(settings, context.db, context.plugins)
    loop = _new_event_loop()
    asyncio.set_event_loop(loop)
    internal_url = f"http://127.0.0.1:{lifecycle.port}/lifecycle"
    dashboard.lifecycle_url = internal_url
    gateway = GatewayServer(
        LifecycleResolver(internal_url, ttl=settings.gateway_cache_ttl),
        fallback_upstream=("127.0.0.1", lifecycle.port),
        limits=RequestLimits.of(settings),
        trusted_proxies=TrustedProxies(settings.trusted_proxies),
        fallback_secret=gateway_secret,
    )
    async_calls = gateway.async_calls = AsyncCalls.from_settings(settings, internal_url)

    async def main() -> None:
        stop = _wait_for_signal(loop)
        port = await gateway.start(settings.host, settings.port)
        base = f"http://{settings.host}:{port}"
        local = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        advertise_lifecycle_url(settings, f"http://{local}:{port}/lifecycle")
        dashboard.gateway_health_url = f"http://{local}:{port}/pub/health"
        async_calls.bind(f"http://{local}:{port}")
        reporter = CallReporter.from_settings(settings, gateway.metrics, internal_url)
        reporter.start()
        if not (settings.internal_pub_url or settings.external_pub_url):
            pipelines.set_pub_url(f"{base}/pub")  # call steps go through this gateway
        pipelines.start()
        print(
            f"Trackside is up on {base}  (dashboard {base}/dashboard, lifecycle API {base}/lifecycle,"
            f" jobs {base}/pub/job/NAME/VERSION)",
            flush=True,
        )
        print(f"data dir {settings.data_dir}, database {context.db.safe_url}", flush=True)
        await stop.wait()
        print("Trackside is stopping...", flush=True)
        await reporter.stop()
        await gateway.stop()

    try:
        lifecycle.start()
        supervisor.start()
        loop.run_until_complete(main())
    except OSError as exc:
        raise InvalidInput(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}") from exc
    finally:
        pipelines.stop()
        supervisor.stop()
        lifecycle.stop()
        context.close()
        with contextlib.suppress(Exception):
            loop.close()


def run_component(name: str, settings: Settings) -> None:
    """`trackside serve COMPONENT`: one component alone, pointed at the others by settings."""
    if name not in COMPONENTS:
        raise InvalidInput(f"unknown component {name!r}; choose one of {', '.join(COMPONENTS)}")
    configure_logging(settings)
    if name == "dashboard":
        from trackside.dashboard.app import run_dashboard

        pub_url = settings.external_pub_url or None
        from trackside.gateway.forwarding import TrustedProxies

        run_dashboard(
            settings.lifecycle_url,
            settings.host,
            settings.port,
            pub_url,
            settings.log_level,
            TrustedProxies(settings.trusted_proxies),
        )
        return
    if name == "gateway":
        from trackside.gateway.server import run_gateway

        run_gateway(settings)
        return
    from trackside.lifecycle.supervisor import Supervisor
    from trackside.lifecycle.wiring import LifecycleContext

    context = LifecycleContext.create(settings, component=name)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        if name == "supervisor":
            supervisor = Supervisor(settings, context.db, context.plugins)
            try:
                while not stop.wait(settings.supervisor_interval):
                    supervisor.tick()
            finally:
                supervisor.release()
            return
        from trackside.lifecycle.api.log_socket import LogSocket
        from trackside.pipelines.service import PipelineService

        context.start_deploy_worker()
        pipelines = PipelineService(settings, context.db, context.plugins)
        # uvicorn in a thread, as in `up`: run in the main thread, uvicorn re-raises SIGTERM once it has
        # shut down, which killed the process before `context.close()` stopped the replicas it supervises.
        app = LogSocket(lifecycle_and_pipelines_app(context, pipelines), context)
        lifecycle = LifecycleServer(app, settings.host, settings.port, settings.log_level)
        lifecycle.start()
        local = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        advertise_lifecycle_url(settings, f"http://{local}:{lifecycle.port}/lifecycle")
        pipelines.start()
        print(f"trackside lifecycle listening on http://{settings.host}:{lifecycle.port}/lifecycle", flush=True)
        stop.wait()
        pipelines.stop()
        lifecycle.stop()
    finally:
        context.close()
