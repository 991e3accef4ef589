"""Fixtures of the pipeline tests: an in-process pipeline service on a migrated store (local executor on)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
