"""Racetrack's own job-type plugins (../shared/racetrack/plugins), bundled and installed with either
client on a real `trackside up`, then used: their templates render as Racetrack renders them, the
docker-proxy job type serves a Dockerfile sample on the docker target, and installing Racetrack's
python3 plugin leaves `python3:latest` deploys on the local target as they were."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jinja2
import pytest
from tests.compat.racetrack_support import (
    PROXY_PLUGIN,
    PROXY_PLUGIN_JOB_TYPE,
    PYTHON_PLUGIN,
    PYTHON_PLUGIN_JOB_TYPE,
    Cli,
    call_when_up,
    copy_sample,
    install_racetrack_plugins,
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
from tests.support.platform import RunningPlatform, deploy_directory, wait_for_deployment, write_job

from trackside.build.images import racetrack_variables, render_racetrack_dockerfile
from trackside.build.jobtype import JobType, JobTypeImage
from trackside.build.spec import BuildSpec
from trackside.infra.docker.engine import DockerEngine
from trackside.manifest.load import load_manifest

pytestmark = [pytest.mark.slow, pytest.mark.store, pytest.mark.docker]

WRAPPER_FROM_GITHUB = "git+https://github.com/TheRacetrack/job-runner-python-lib.git@1.16.5"


@dataclass
class Setup:
    platform: RunningPlatform
    engine: DockerEngine
    racetrack: Cli
    trackside: Cli
    bundles: dict[str, Path]
    jobs: list[str]

    def name(self, prefix: str) -> str:
        """A job name of this module's own: tests share one engine with other modules running in parallel."""
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.jobs.append(name)
        return name


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, racetrack_cli: Path) -> Iterator[Setup]:  # noqa: F811
    require_shared()
    engine = require_engine()
    python_image(engine)
    root = tmp_path_factory.mktemp("racetrack-plugins")
    with fresh_database(root) as database_url:
        platform = start_docker_platform(root / "data", database_url)
        jobs: list[str] = []
        try:
            racetrack = racetrack_runner(racetrack_cli, platform, root / "home")
            trackside = trackside_cli(platform, root / "client")
            bundles = install_racetrack_plugins(racetrack, trackside, root / "bundles")
            yield Setup(platform, engine, racetrack, trackside, bundles, jobs)
        finally:
            platform.stop()
            remove_jobs(engine, *jobs)


def test_both_plugins_bundle_and_install_with_either_client(setup: Setup) -> None:
    assert setup.bundles["python"].name == "python3-job-type-2.15.1.zip"
    assert setup.bundles["proxy"].name == "docker-proxy-job-type-3.2.2.zip"
    listed = setup.racetrack("plugin", "list", "--job-types").stdout
    assert PYTHON_PLUGIN_JOB_TYPE in listed and PROXY_PLUGIN_JOB_TYPE in listed
    assert "python3:1.0.0" in listed  # the built-in python3 job type is still there
    plugins = setup.trackside("plugin", "list").stdout
    assert "python3-job-type" in plugins and "docker-proxy-job-type" in plugins


def test_python3_latest_still_deploys_on_the_local_target_beside_racetracks_python3(
    setup: Setup, tmp_path: Path
) -> None:
    # Racetrack's python3:2.15.1 builds images only: `latest` on the local target is the built-in one.
    name = setup.name("local-adder")
    job = write_job(tmp_path / "job", name, "class Job:\n    def perform(self, a=0, b=0):\n        return a + b\n")
    response = deploy_directory(setup.platform, job)
    assert response.status_code in (200, 201), response.text
    result = wait_for_deployment(setup.platform.api, response.json()["id"], timeout=300)
    assert result["status"] == "done", result
    http = setup.platform.http
    assert http.get(f"{setup.platform.api}/job/{name}/0.0.1").json()["job_type_version"] == "1.0.0"
    logs = http.get(f"{setup.platform.api}/job/{name}/0.0.1/build-logs").json()["logs"]
    assert "job type python3:1.0.0" in logs
    answer = http.post(f"{setup.platform.url}/pub/job/{name}/latest/api/v1/perform", json={"a": 40, "b": 2})
    assert answer.json() == 42


def _render(plugin_dir: Path, sample: Path, job_type: str, tmp_path: Path) -> str:
    manifest = load_manifest(sample, (f"jobtype={job_type}",))
    name, _, version = job_type.partition(":")
    image = JobTypeImage(template=plugin_dir / "job-template.Dockerfile", racetrack_style=True, jobtype_dir=plugin_dir)
    spec = BuildSpec(manifest, JobType(name, version, [image]), tmp_path, tmp_path / "cache", print)
    return render_racetrack_dockerfile(image, spec, "tar")


def test_templates_render_as_racetrack_renders_them(tmp_path: Path) -> None:
    require_shared()
    sample = copy_sample("python-class", tmp_path)
    python = _render(PYTHON_PLUGIN, sample, PYTHON_PLUGIN_JOB_TYPE, tmp_path)
    # Plain Jinja2 of the same template and variables: undefined ones (requirements_path) are empty.
    manifest = load_manifest(sample, (f"jobtype={PYTHON_PLUGIN_JOB_TYPE}",))
    spec = BuildSpec(manifest, JobType("python3", "2.15.1", []), tmp_path, tmp_path / "cache", print)
    expected = jinja2.Template((PYTHON_PLUGIN / "job-template.Dockerfile").read_text()).render(
        **racetrack_variables(spec, "tar")
    )
    assert python == expected
    assert "FROM python:3.11-slim-bullseye" in python  # the template's defaults
    assert 'pip install -r ""' not in python and "requirements_path" not in python
    assert 'ENV JOB_NAME "adder"' in python and 'ENV JOB_VERSION "0.0.2"' in python
    assert 'ENV JOB_TYPE_VERSION "2.15.1"' in python and 'ENV GIT_VERSION "tar"' in python
    assert "racetrack_job_wrapper run 'adder.py' 'AdderModel'" in python
    assert "memray" not in python and "backports" not in python

    flask = copy_sample("docker-python-flask", tmp_path)
    proxy = _render(PROXY_PLUGIN, flask, PROXY_PLUGIN_JOB_TYPE, tmp_path)
    assert "COPY --from=jobtype proxy_wrapper/requirements.txt /src/proxy_wrapper/" in proxy
    assert "PROXY_MODE" not in proxy and "JOB_USER_MODULE_PORT" not in proxy  # no jobtype_extra for them
    assert 'ENV JOB_NAME "docker-python-flask"' in proxy


def test_docker_proxy_serves_the_flask_sample_on_the_docker_target(setup: Setup, tmp_path: Path) -> None:
    name = setup.name("flask")
    sample = copy_sample("docker-python-flask", tmp_path)
    overrides = (f"name={name}", "infrastructure_target=docker")
    response = deploy_directory(setup.platform, sample, overrides=overrides)
    assert response.status_code in (200, 201), response.text
    result = wait_for_deployment(setup.platform.api, response.json()["id"], timeout=900)
    http = setup.platform.http
    logs = http.get(f"{setup.platform.api}/job/{name}/0.0.2/build-logs").json()["logs"]
    assert result["status"] == "done", f"{result}\n{logs[-4000:]}"
    assert f"job type {PROXY_PLUGIN_JOB_TYPE}" in logs
    assert "image python:3.9-slim-bullseye -> " in logs  # both images' base, mapped
    assert "building image (2/2)" in logs
    job = http.get(f"{setup.platform.api}/job/{name}/0.0.2").json()
    assert job["infrastructure_target"] == "docker" and job["status"] == "running"
    # As its README says: POST /perform {"numbers": [40, 2]} answers 42, here through the gateway.
    answer = call_when_up(http, f"{setup.platform.url}/pub/job/{name}/latest/api/v1/perform", {"numbers": [40, 2]})
    assert (answer.status_code, answer.json()) == (200, 42)


def test_racetracks_python3_job_type_builds_the_class_sample_on_the_docker_target(setup: Setup, tmp_path: Path) -> None:
    name = setup.name("rt-adder")
    sample = copy_sample("python-class", tmp_path)
    overrides = (f"name={name}", f"jobtype={PYTHON_PLUGIN_JOB_TYPE}", "infrastructure_target=docker")
    response = deploy_directory(setup.platform, sample, overrides=overrides)
    assert response.status_code in (200, 201), response.text
    result = wait_for_deployment(setup.platform.api, response.json()["id"], timeout=1200)
    logs = setup.platform.http.get(f"{setup.platform.api}/job/{name}/0.0.2/build-logs").json()["logs"]
    if not reachable("https://github.com"):
        # The template installs Racetrack's job wrapper from GitHub (python_wrapper/requirements.txt).
        assert result["status"] == "failed", result
        assert "racetrack-job-runner" in logs or "job-runner-python-lib" in logs, logs[-4000:]
        pytest.skip(
            f"Racetrack's python3 template builds here up to `pip install {WRAPPER_FROM_GITHUB}`, "
            "and github.com can't be reached from this machine"
        )
    assert result["status"] == "done", f"{result}\n{logs[-4000:]}"
    answer = call_when_up(
        setup.platform.http, f"{setup.platform.url}/pub/job/{name}/latest/api/v1/perform", {"numbers": [40, 2]}
    )
    assert (answer.status_code, answer.json()) == (200, 42)
