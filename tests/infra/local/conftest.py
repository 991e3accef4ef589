"""Fixtures for the local target's tests; every process a test starts is killed at teardown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.infra.local.localjob import LocalHarness

from trackside.config import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", job_live_timeout=5.0, job_ready_timeout=5.0)


@pytest.fixture
def local(settings: Settings) -> Iterator[LocalHarness]:
    harness = LocalHarness(settings)
    try:
        yield harness
    finally:
        harness.cleanup()
