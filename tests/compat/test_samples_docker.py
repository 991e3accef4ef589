"""Racetrack's Dockerfile samples (../shared/racetrack/sample/docker-*), deployed unchanged from their
local directories on the docker target of a real `trackside up`, with Racetrack's docker-proxy job
type installed and the public base images they name mapped to local ones, and called as their
READMEs say. A sample that cannot work here for a reason outside Trackside is skipped with it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.compat.racetrack_support import (
    GOLANG_IMAGE,
    GOLANG_IMAGE_DOCKERFILE,
    SAMPLES,
    call_when_up,
    copy_sample,
    install_racetrack_plugins,
    local_image,
    python_image,
    racetrack_runner,
    reachable,
    require_shared,
    start_docker_platform,
    trackside_cli,
)
from tests.compat.test_racetrack_client import racetrack_cli  # noqa: F401 - the session fixture
from tests.conftest import fresh_database
from tests.infra.docker.support import remove_jobs, require_engine
from tests.support.platform import RunningPlatform, deploy_directory, wait_for_deployment

pytestmark = [pytest.mark.slow, pytest.mark.store, pytest.mark.docker]

GO_PROXY = "https://proxy.golang.org"
# The Go sample's Dockerfile runs `go mod download` for its go.mod's modules (github.com/...).
SKIPPED_UNLESS_REACHABLE = {"docker-golang-http": (GO_PROXY, "https://github.com")}


def test_every_dockerfile_sample_is_covered() -> None:
    """A new Dockerfile sample in ../shared must be added here, never silently left out."""
    require_shared()
    samples = {d.name for d in SAMPLES.iterdir() if d.is_dir() and d.name.startswith("docker-")}
    assert samples == {"docker-python-flask", "docker-golang-http"}


@dataclass
class Setup:
    platform: RunningPlatform
    jobs: list[str] = field(default_factory=list)

    def deploy(self, sample: str, tmp_path: Path, timeout: float = 900) -> tuple[str, dict, str]:
        """Deploy a sample (under a name of this test's own) on the docker target: name, result, build log."""
        name = f"{sample}-{uuid.uuid4().hex[:6]}"
        self.jobs.append(name)
        directory = copy_sample(sample, tmp_path)
        response = deploy_directory(
            self.platform, directory, overrides=(f"name={name}", "infrastructure_target=docker")
        )
        assert response.status_code in (200, 201), response.text
        result = wait_for_deployment(self.platform.api, response.json()["id"], timeout=timeout)
        version = result.get("job_version") or "0.0.2"
        logs = self.platform.http.get(f"{self.platform.api}/job/{name}/{version}/build-logs").json()["logs"]
        return name, result, logs


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, racetrack_cli: Path) -> Iterator[Setup]:  # noqa: F811
    require_shared()
    engine = require_engine()
    python_image(engine)
    root = tmp_path_factory.mktemp("docker-samples")
    with fresh_database(root) as database_url:
        platform = start_docker_platform(root / "data", database_url)
        state = Setup(platform)
        try:
            racetrack = racetrack_runner(racetrack_cli, platform, root / "home")
            install_racetrack_plugins(racetrack, trackside_cli(platform, root / "client"), root / "bundles")
            yield state
        finally:
            platform.stop()
            remove_jobs(engine, *state.jobs)


def test_docker_python_flask_sums_numbers(setup: Setup, tmp_path: Path) -> None:
    name, result, logs = setup.deploy("docker-python-flask", tmp_path)
    assert result["status"] == "done", f"{result}\n{logs[-4000:]}"
    assert "RUN pip install flask" in logs  # the sample's own build step, with the engine's network
    pub = f"{setup.platform.url}/pub/job/{name}/latest"
    # README: POST /api/v1/perform {"numbers": [40, 2]} -> 42
    answer = call_when_up(setup.platform.http, f"{pub}/api/v1/perform", {"numbers": [40, 2]})
    assert (answer.status_code, answer.json()) == (200, 42)


def test_docker_golang_http_sums_numbers(setup: Setup, tmp_path: Path) -> None:
    unreachable = [url for url in SKIPPED_UNLESS_REACHABLE["docker-golang-http"] if not reachable(url)]
    if unreachable:
        pytest.skip(
            "its Dockerfile runs `go mod download` for modules on github.com (through the Go module proxy), "
            f"and {', '.join(unreachable)} can't be reached from this machine"
        )
    local_image(require_engine(), GOLANG_IMAGE, GOLANG_IMAGE_DOCKERFILE)
    name, result, logs = setup.deploy("docker-golang-http", tmp_path)
    assert result["status"] == "done", f"{result}\n{logs[-4000:]}"
    answer = call_when_up(
        setup.platform.http, f"{setup.platform.url}/pub/job/{name}/latest/api/v1/perform", {"numbers": [40, 2]}
    )
    assert (answer.status_code, answer.json()) == (200, 42)
