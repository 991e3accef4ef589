"""Which job type version a manifest's alias resolves to depends on what can build for its target."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trackside.build.jobtype import JobType, JobTypeImage
from trackside.config import Settings
from trackside.errors import InvalidInput
from trackside.lifecycle.deployer import DeployService
from trackside.manifest.load import parse_manifest
from trackside.plugins.engine import PluginEngine
from trackside.plugins.manifest import PluginManifest
from trackside.store.database import Database


class ImagesOnly:
    """Like Racetrack's python3 plugin: a higher python3 version that builds images only."""

    def job_types(self) -> dict[str, Any]:
        return {
            "python3:2.15.1": {"images": [{"source": "jobtype", "dockerfile_path": "t.Dockerfile", "template": True}]},
            "golang:1.0.0": JobType("golang", "1.0.0", [JobTypeImage(source="job")]),
        }


@pytest.fixture
def service(tmp_path: Path, db: Database) -> Iterator[DeployService]:
    settings = Settings(data_dir=tmp_path / "data", docker_url="off")
    engine = PluginEngine(settings, watch=False)
    engine.add(PluginManifest(name="python3-job-type", version="2.15.1"), ImagesOnly())
    service = DeployService(settings, db, engine, workers=1)
    try:
        yield service
    finally:
        service.close()
        engine.close()


def manifest(jobtype: str) -> Any:
    raw = {"name": "j", "owner_email": "t@example.com", "version": "1.0.0", "jobtype": jobtype}
    if jobtype.startswith("python3"):
        raw["jobtype_extra"] = {"entrypoint_path": "job.py"}
    return parse_manifest(raw)


def test_latest_on_the_local_target_skips_versions_that_build_images_only(service: DeployService) -> None:
    local = service.plugins.infrastructure_targets()["local"]
    assert service.resolve_job_type(manifest("python3:latest"), local).full_name == "python3:1.0.0"
    assert service.resolve_job_type(manifest("python3:1.*"), local).full_name == "python3:1.0.0"
    with pytest.raises(InvalidInput, match=r"'python3:2\.\*': no installed version that matches it can build"):
        service.resolve_job_type(manifest("python3:2.*"), local)
    # Without a target (or for an image target) the highest version, as Racetrack resolves it.
    assert service.resolve_job_type(manifest("python3:latest")).full_name == "python3:2.15.1"


def test_an_exact_version_is_used_as_named_and_a_type_with_no_buildable_version_is_refused(
    service: DeployService,
) -> None:
    local = service.plugins.infrastructure_targets()["local"]
    assert service.resolve_job_type(manifest("python3:2.15.1"), local).full_name == "python3:2.15.1"
    with pytest.raises(InvalidInput, match="can build a command for this host for infrastructure target local"):
        service.resolve_job_type(manifest("golang:latest"), local)
