"""Fixtures for plugin tests: settings, zips made on the fly, a loopback webhook sink."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.plugins.support import WebhookSink, make_zip, plugin_files

from trackside.config import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def plugin_zip() -> Callable[..., bytes]:
    def build(
        name: str = "demo",
        version: str = "1.0.0",
        source: str = "class Plugin:\n    pass\n",
        extra: dict[str, str | bytes] | None = None,
        **manifest: Any,
    ) -> bytes:
        return make_zip({**plugin_files(name, version, source, **manifest), **(extra or {})})

    return build


@pytest.fixture
def webhook_sink() -> Iterator[WebhookSink]:
    """A loopback HTTP server recording the JSON bodies POSTed to it."""
    sink = WebhookSink("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with sink.arrived:
                sink.events.append(json.loads(body))
                sink.arrived.notify_all()
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    sink.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
