"""Helpers for tests on a real Docker engine: the engine, small jobs, image builds, cleanup."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from tests.support.platform import RunningPlatform, start_platform
from tests.support.services import missing, require_docker

from trackside.build.jobtypes.dockerfile import Plugin as DockerfilePlugin
from trackside.build.jobtypes.python3 import Plugin as Python3Plugin
from trackside.build.spec import BuildSpec
from trackside.config import Settings
from trackside.identity import platform_id
from trackside.infra.docker.engine import DockerEngine
from trackside.infra.docker.images import DockerImageBuilder
from trackside.infra.docker.naming import LABEL_NAME, LABEL_TARGET
from trackside.manifest.load import parse_manifest

BASE_IMAGE = "trackside/python3-base:bookworm"
REGISTRY = "127.0.0.1:5000"
TEST_NAMESPACE = "trackside-test"

ADDER = "class Job:\n    def perform(self, a=0, b=0):\n        return a + b\n"
ENV_JOB = "import os\n\nclass Job:\n    def perform(self, name='SECRET_VALUE'):\n        return os.environ.get(name)\n"


def require_engine() -> DockerEngine:
    """The local Docker engine with the base image; a skip (or a failure in CI) when missing."""
    require_docker()
    engine = DockerEngine()
    if not engine.image_exists(BASE_IMAGE):
        missing("Docker base image", f"{BASE_IMAGE} is not on the engine (run scripts/docker-setup)")
    return engine


def require_registry() -> str:
    try:
        httpx.get(f"http://{REGISTRY}/v2/", timeout=3).raise_for_status()
    except httpx.HTTPError as exc:
        missing("Docker registry", f"{REGISTRY}: {exc}")
    return REGISTRY


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def docker_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "docker_registry_namespace": TEST_NAMESPACE,
        "job_live_timeout": 20.0,
        "job_ready_timeout": 20.0,
        "docker_url": "off",
    }
    values.update(overrides)
    return Settings(**values)


def python_manifest(name: str, version: str = "0.0.1", **extra: Any) -> Any:
    raw = {
        "name": name,
        "owner_email": "t@example.com",
        "version": version,
        "jobtype": "python3:latest",
        "jobtype_extra": {"entrypoint_path": "job.py"},
        **extra,
    }
    return parse_manifest(raw, source="test manifest")


def dockerfile_manifest(name: str, version: str = "0.0.1", **extra: Any) -> Any:
    raw = {"name": name, "owner_email": "t@example.com", "version": version, "jobtype": "dockerfile:latest", **extra}
    return parse_manifest(raw, source="test manifest")


def build(
    engine: DockerEngine,
    settings: Settings,
    workspace: Path,
    manifest: Any,
    files: dict[str, str],
    log: Callable[[str], None] | None = None,
    secret_build_env: dict[str, str] | None = None,
    no_cache: bool = False,
    tag: str | None = None,
) -> str:
    """Build `files` (the job's source) as `manifest` into an image; its name."""
    source = workspace / "src"
    source.mkdir(parents=True, exist_ok=True)
    for relative, text in files.items():
        path = source / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    plugin = Python3Plugin() if manifest.jobtype_name == "python3" else DockerfilePlugin()
    job_type = next(iter(plugin.job_types().values()))
    lines: list[str] = []
    spec = BuildSpec(
        manifest,
        job_type,
        workspace,
        workspace.parent / "cache",
        log or lines.append,
        tag=tag or unique("t-"),
        secret_build_env=dict(secret_build_env or {}),
        no_cache=no_cache,
        source_ready=True,
    )
    # As a platform builds them: labelled with the platform's identity (here its data dir's).
    return DockerImageBuilder(engine, platform_id(settings)).build_image(spec, settings)


def remove_target(engine: DockerEngine, target: str) -> None:
    ids = engine.run(["ps", "-aq", "--filter", f"label={LABEL_TARGET}={target}"], check=False).stdout.split()
    if ids:
        engine.run(["rm", "-f", *ids], check=False)


def remove_jobs(engine: DockerEngine, *names: str) -> None:
    """Remove the containers and images of these jobs (parallel tests' platforms share the `docker` target)."""
    for name in names:
        ids = engine.run(["ps", "-aq", "--filter", f"label={LABEL_NAME}={name}"], check=False).stdout.split()
        if ids:
            engine.run(["rm", "-f", *ids], check=False)
        listed = engine.run(
            ["images", "--filter", f"label={LABEL_NAME}={name}", "--format", "{{.Repository}}:{{.Tag}}"], check=False
        ).stdout.split()
        remove_images(engine, *[image for image in listed if TEST_NAMESPACE in image])


def remove_images(engine: DockerEngine, *images: str) -> None:
    if images:
        subprocess.run(engine.command(["rmi", "-f", *images]), capture_output=True, check=False)


def call(address: str, payload: dict[str, Any], path: str = "/api/v1/perform") -> httpx.Response:
    return httpx.post(f"http://{address}{path}", json=payload, timeout=10)


@contextlib.contextmanager
def platform_with_docker(tmp_path: Path, database_url: str) -> Iterator[RunningPlatform]:
    """`trackside up` with the docker target on this machine's engine; removes its jobs' containers after."""
    engine = require_engine()
    running = start_platform(
        tmp_path / "data", database_url, extra_env={"TRACKSIDE_DOCKER_REGISTRY_NAMESPACE": TEST_NAMESPACE}
    )
    try:
        yield running
    finally:
        deployed = {job["name"] for job in running.http.get(f"{running.api}/job").json()}
        running.stop()
        remove_jobs(engine, *deployed)  # only this platform's jobs: parallel tests share the engine


class CallLoop:
    """Calls job `name` through the gateway over and over, recording every answer that is not 42."""

    def __init__(self, platform: RunningPlatform, name: str) -> None:
        self.url = f"{platform.url}/pub/job/{name}/latest/api/v1/perform"
        self.headers = platform.auth
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(headers=self.headers, timeout=10) as client:
            while not self._stop.is_set():
                try:
                    response = client.post(self.url, json={"a": 40, "b": 2})
                    if response.status_code == 200 and response.json() == 42:
                        self.ok += 1
                    else:
                        self.failures.append(f"{response.status_code} {response.text[:200]}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))

    def __enter__(self) -> CallLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
