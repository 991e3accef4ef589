"""Start the server, load the job in the background, stop gracefully on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import signal
import sys
import time

from .app import JobApp
from .http import HeadLimits, HttpProtocol, ServerState
from .settings import RuntimeSettings


def new_event_loop(kind: str = "auto") -> asyncio.AbstractEventLoop:
    """uvloop when the job's virtualenv happens to have it (and `kind` allows), else asyncio's."""
    if kind in ("auto", "uvloop"):
        try:
            import uvloop

            return uvloop.new_event_loop()
        except ImportError:
            if kind == "uvloop":
                raise
    return asyncio.new_event_loop()


async def serve(app: JobApp, settings: RuntimeSettings, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    limits = HeadLimits(settings.max_url_bytes, settings.max_head_bytes, settings.max_headers)
    state = ServerState(app.on_response, limits)
    server = await loop.create_server(
        lambda: HttpProtocol(app.handle, state),
        settings.host,
        settings.port,
        reuse_address=True,
        backlog=2048,
    )
    port = server.sockets[0].getsockname()[1] if server.sockets else settings.port
    print(
        f"trackside job runtime listening on http://{settings.host}:{port} "
        f"(loop: {type(loop).__module__.split('.')[0]})",
        flush=True,
    )
    app.start(loop)
    await stop.wait()
    # Graceful stop: refuse new connections, let in-flight requests finish briefly, close the rest.
    state.stopping = True
    server.close()
    state.close_idle()
    deadline = time.monotonic() + settings.shutdown_grace_s
    while state.busy_connections() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        state.close_idle()
    for conn in list(state.connections):
        conn.close()
    if app.log is not None:
        app.log.flush()


def run(entrypoint_path: str, entrypoint_class: str | None, settings: RuntimeSettings) -> int:
    loop = new_event_loop(settings.event_loop)
    asyncio.set_event_loop(loop)
    app = JobApp(settings, entrypoint_path, entrypoint_class)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
    try:
        loop.run_until_complete(serve(app, settings, stop))
    except OSError as exc:
        print(f"trackside job runtime: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 1
    finally:
        app.pool.shutdown()
        loop.close()
    print("trackside job runtime stopped", flush=True)
    return 0
