"""Fixtures for the Docker target's tests: a real engine, a per-test target name, cleanup."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.infra.docker.support import remove_target, require_engine, unique

from trackside.infra.docker.engine import DockerEngine


@pytest.fixture(scope="session")
def engine() -> DockerEngine:
    return require_engine()


@pytest.fixture
def target_name(engine: DockerEngine) -> Iterator[str]:
    """A fresh target name; every container labelled with it is removed at teardown."""
    name = unique("t")
    try:
        yield name
    finally:
        remove_target(engine, name)
