"""Fixtures for the CLI tests: an isolated client config, a CLI runner, and a scripted HTTP server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from tests.cli.support import Cli, ScriptedApi, handler_for


@pytest.fixture(autouse=True)
def client_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every CLI test gets its own client config dir and no inherited remote."""
    directory = tmp_path / "client-config"
    monkeypatch.setenv("TRACKSIDE_CLIENT_CONFIG", str(directory))
    monkeypatch.delenv("TRACKSIDE_REMOTE", raising=False)
    return directory


@pytest.fixture
def cli() -> Cli:
    return Cli()


@pytest.fixture
def scripted_api() -> Iterator[ScriptedApi]:
    api = ScriptedApi("")
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(api))
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
