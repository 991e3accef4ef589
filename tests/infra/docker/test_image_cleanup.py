"""`trackside admin registry-clean`: images of deleted jobs and old builds go, what the store uses stays."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tests.infra.docker.support import (
    ADDER,
    REGISTRY,
    build,
    docker_settings,
    python_manifest,
    remove_images,
    require_registry,
    unique,
)

from trackside.infra.docker.engine import DockerEngine
from trackside.infra.docker.image_cleanup import clean

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def registry_tags(repo: str) -> list[str]:
    response = httpx.get(f"http://{REGISTRY}/v2/{repo}/tags/list", timeout=10)
    return sorted(response.json().get("tags") or []) if response.status_code == 200 else []


def test_clean_keeps_what_the_store_uses_and_removes_the_rest(engine: DockerEngine, tmp_path: Path) -> None:
    require_registry()
    namespace = unique("clean")  # nothing else lives here, so the test can't remove another's images
    settings = docker_settings(tmp_path, docker_registry=REGISTRY, docker_registry_namespace=namespace)
    kept_job, deleted_job = unique("kept"), unique("gone")
    images = [
        build(engine, settings, tmp_path / "1", python_manifest(kept_job), {"job.py": ADDER + "# v1\n"}, tag="old"),
        build(engine, settings, tmp_path / "2", python_manifest(kept_job), {"job.py": ADDER}, tag="current"),
        build(engine, settings, tmp_path / "3", python_manifest(deleted_job), {"job.py": ADDER}, tag="last"),
    ]
    try:
        env = {**os.environ, "TRACKSIDE_DOCKER_REGISTRY": REGISTRY, "TRACKSIDE_DOCKER_REGISTRY_NAMESPACE": namespace}
        dry = subprocess.run(
            [
                sys.executable,
                "-m",
                "trackside.cli.main",
                "admin",
                "registry-clean",
                "--dry-run",
                "--data-dir",
                str(tmp_path / "data"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert dry.returncode == 0, dry.stderr
        assert f"would remove {REGISTRY}/{namespace}/job-entrypoint/{kept_job}:old" in dry.stdout
        assert "would remove 6 image(s)" in dry.stderr  # an empty store wants none (registry + engine)
        assert registry_tags(f"{namespace}/job-entrypoint/{kept_job}") == ["current", "old"]

        report = clean(settings, [engine], keep={(kept_job, "current")})
        assert sorted(report.removed_from_registry) == sorted([images[0], images[2]])
        assert registry_tags(f"{namespace}/job-entrypoint/{kept_job}") == ["current"]
        assert registry_tags(f"{namespace}/job-entrypoint/{deleted_job}") == []
        assert engine.image_exists(images[1])
        # A tag sharing its digest with a kept one (an identical rebuild) keeps the digest alive.
        same = build(engine, settings, tmp_path / "4", python_manifest(kept_job), {"job.py": ADDER}, tag="twin")
        images.append(same)
        report = clean(settings, [engine], keep={(kept_job, "current")})
        assert registry_tags(f"{namespace}/job-entrypoint/{kept_job}") == ["current", "twin"]
        assert not engine.image_exists(images[0]) and not engine.image_exists(images[2])
    finally:
        remove_images(engine, *images)
