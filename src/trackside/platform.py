"""Running the platform: every component in one process (`trackside up`) or one alone (`serve`).

In `up`, the gateway is the front door on the configured port: `/pub/...` goes to jobs and every
other path is proxied to the lifecycle API, which listens on an internal loopback port of the same
process. The same gateway code runs alone in `serve gateway`, pointed at `lifecycle_url`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from typing import Any

import uvicorn

from trackside.config import Settings
from trackside.errors import InvalidInput

log = logging.getLogger("trackside")

COMPONENTS = ("lifecycle", "gateway", "supervisor")


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
        config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off", timeout_graceful_shutdown=3)
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


def run_platform(settings: Settings) -> None:
    """`trackside up`: lifecycle API, deploy workers, supervisor and gateway in one process."""
    from trackside.gateway.resolver import LifecycleResolver
    from trackside.gateway.server import GatewayServer
    from trackside.lifecycle.api.app import create_app
    from trackside.lifecycle.context import LifecycleContext
    from trackside.lifecycle.supervisor import Supervisor

    configure_logging(settings)
    context = LifecycleContext.create(settings)
    context.start_deploy_worker()
    lifecycle = LifecycleServer(create_app(context), "127.0.0.1", 0, settings.log_level)
    supervisor = Supervisor(settings, context.db, context.plugins)
    loop = _new_event_loop()
    asyncio.set_event_loop(loop)
    internal_url = f"http://127.0.0.1:{lifecycle.port}/lifecycle"
    gateway = GatewayServer(
        LifecycleResolver(internal_url, ttl=settings.gateway_cache_ttl),
        fallback_upstream=("127.0.0.1", lifecycle.port),
    )

    async def main() -> None:
        stop = _wait_for_signal(loop)
        port = await gateway.start(settings.host, settings.port)
        base = f"http://{settings.host}:{port}"
        print(
            f"Trackside is up on {base}  (lifecycle API {base}/lifecycle, jobs {base}/pub/job/NAME/VERSION)", flush=True
        )
        print(f"data dir {settings.data_dir}, database {context.db.safe_url}", flush=True)
        await stop.wait()
        print("Trackside is stopping...", flush=True)
        await gateway.stop()

    try:
        lifecycle.start()
        supervisor.start()
        loop.run_until_complete(main())
    except OSError as exc:
        raise InvalidInput(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}") from exc
    finally:
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
    if name == "gateway":
        from trackside.gateway.server import run_gateway

        run_gateway(settings)
        return
    from trackside.lifecycle.context import LifecycleContext
    from trackside.lifecycle.supervisor import Supervisor

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
        from trackside.lifecycle.api.app import create_app

        context.start_deploy_worker()
        # uvicorn in a thread, as in `up`: run in the main thread, uvicorn re-raises SIGTERM once it has
        # shut down, which killed the process before `context.close()` stopped the replicas it supervises.
        lifecycle = LifecycleServer(create_app(context), settings.host, settings.port, settings.log_level)
        lifecycle.start()
        print(f"trackside lifecycle listening on http://{settings.host}:{lifecycle.port}/lifecycle", flush=True)
        stop.wait()
        lifecycle.stop()
    finally:
        context.close()
