"""Fixtures shared by every component's tests: databases, and a running platform.

PostgreSQL and Docker tests run whenever those services are reachable and are skipped, with the
reason, when not. Under `TRACKSIDE_REQUIRE_SERVICES=1` (set by `.ci/run`) a missing service fails
the run instead. `TRACKSIDE_TEST_DATABASE=postgresql` runs the store-backed tests on PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.platform import RunningPlatform, start_platform
from tests.support.services import postgres_admin_url, require_postgres
from trackside.store.database import Database

# The real Kubernetes node's fixtures (kube_cluster, kube_namespace), for every package's tests.
pytest_plugins = ["tests.support.kubernetes"]

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "examples"


def pytest_report_header() -> str:
    return f"trackside test database: {os.environ.get('TRACKSIDE_TEST_DATABASE', 'sqlite')}"


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: SQLite in tmp_path, or a new PostgreSQL database."""
    with fresh_database(tmp_path) as url:
        yield url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """The `database_url` database with the schema migrated; disposed of afterwards."""
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


@contextmanager
def fresh_database(directory: Path) -> Iterator[str]:
    """The `database_url` fixture's database, for fixtures of a wider scope (mark their tests `store`)."""
    if os.environ.get("TRACKSIDE_TEST_DATABASE", "sqlite") != "postgresql":
        yield f"sqlite:///{directory / 'trackside.db'}"
        return
    yield from postgres_database()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database whatever TRACKSIDE_TEST_DATABASE says."""
    yield from postgres_database()


def postgres_database() -> Iterator[str]:
    import psycopg

    admin = require_postgres()
    name = f"trackside_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_admin_url(database=name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def platform(tmp_path: Path, database_url: str) -> Iterator[RunningPlatform]:
    """`trackside up` as a real process on a free port, with a fresh data dir; stopped afterwards."""
    running = start_platform(tmp_path / "data", database_url)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def platform_url(platform: RunningPlatform) -> str:
    return platform.url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the store are marked `store`, so CI can run just them again on PostgreSQL."""
    for item in items:
        if "database_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.store)
