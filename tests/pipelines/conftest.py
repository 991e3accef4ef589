"""Fixtures of the pipeline tests: an in-process pipeline service on a migrated store (local executor on)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import fresh_database
from tests.support.platform import RunningPlatform, start_platform

from trackside.config import Settings
from trackside.pipelines.service import PipelineService
from trackside.store.database import Database


def local_settings(data_dir: Path, **extra: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "pipeline_local_executor": True,
        "pipeline_executor": "local",
        "pipeline_log_notifier": False,
        "docker_url": "off",
        **extra,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def service(tmp_path: Path, db: Database) -> Iterator[PipelineService]:
    """The pipeline service with its scheduler running, local executor on, on the `db` store."""
    running = PipelineService(local_settings(tmp_path / "data"), db, run_scheduler=True)
    running.start()
    try:
        yield running
    finally:
        running.stop()


LOCAL_ENV = {
    "TRACKSIDE_PIPELINE_LOCAL_EXECUTOR": "true",
    "TRACKSIDE_PIPELINE_EXECUTOR": "local",
    "TRACKSIDE_PIPELINE_IMAGES": '{"busybox": "trackside/python3-base:bookworm"}',
}


@pytest.fixture(scope="module")
def pipeline_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    """One `trackside up` for a module's tests, local executor on (tests using it are marked `store`)."""
    directory = tmp_path_factory.mktemp("pipelines")
    with fresh_database(directory) as url:
        running = start_platform(directory / "data", url, extra_env=LOCAL_ENV, timeout=180)
        try:
            yield running
        finally:
            running.stop()
