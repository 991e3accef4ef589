"""Is PostgreSQL / Docker reachable? Skip with the reason if not, or fail when CI requires them."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

POSTGRES_HOST = os.environ.get("TRACKSIDE_TEST_PG_HOST", "127.0.0.1")
POSTGRES_PORT = os.environ.get("TRACKSIDE_TEST_PG_PORT", "5432")
POSTGRES_USER = os.environ.get("TRACKSIDE_TEST_PG_USER", "postgres")


def services_required() -> bool:
    return os.environ.get("TRACKSIDE_REQUIRE_SERVICES", "") not in ("", "0", "false")


def missing(service: str, reason: str) -> None:
    message = f"{service} is not reachable: {reason}"
    if services_required():
        pytest.fail(f"{message} (TRACKSIDE_REQUIRE_SERVICES is set, so this is a failure)")
    pytest.skip(message)


def postgres_admin_url(database: str = "postgres") -> str:
    return f"postgresql://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{database}"


def require_postgres() -> str:
    """The admin URL of a reachable PostgreSQL server."""
    try:
        import psycopg

        with psycopg.connect(postgres_admin_url(), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        missing("PostgreSQL", f"{postgres_admin_url()}: {exc}")
    return postgres_admin_url()


def require_docker() -> None:
    if shutil.which("docker") is None:
        missing("Docker engine", "no docker client on PATH")
    result = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=20
    )
    if result.returncode != 0:
        missing("Docker engine", result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "no daemon")


CHROMIUM = os.environ.get("TRACKSIDE_CHROMIUM", "/usr/bin/chromium")
# Flags for Debian's Chromium in a container without a display or network: no sandbox (we run as
# root), no background traffic, no GPU.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--headless"]


def require_chromium() -> str:
    """The path of Debian's Chromium (Playwright's own browser download can't work here)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        missing("Playwright", f"the playwright package is not installed ({exc}); pip install -e '.[test]'")
    if not os.path.isfile(CHROMIUM) or not os.access(CHROMIUM, os.X_OK):
        missing("Chromium", f"{CHROMIUM} not found: apt-get install -y chromium (or set TRACKSIDE_CHROMIUM)")
    return CHROMIUM
