"""Image builds on a real Docker engine: layer cache, --no-cache, secrets, offline requirements, failures."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from tests.infra.docker.support import (
    ADDER,
    build,
    docker_settings,
    dockerfile_manifest,
    python_manifest,
    remove_images,
    require_engine,
    require_registry,
    unique,
)

from trackside.build.images import image_reference, push_image
from trackside.errors import BuildFailed, Unavailable
from trackside.infra.docker.engine import DockerEngine, EngineConfig

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SECRET = "s3cr3t-token-value-42"


@pytest.fixture(scope="module")
def engine() -> DockerEngine:
    return require_engine()


def steps(lines: list[str]) -> dict[str, bool]:
    """BuildKit's plain progress: Dockerfile step -> whether it came from the layer cache."""
    names: dict[str, str] = {}
    cached: set[str] = set()
    for line in lines:
        number, _, rest = line.partition(" ")
        if rest.startswith("[") and "/" in rest.split("]")[0] and "internal" not in rest:
            names[number] = rest.split("] ", 1)[1]
        elif rest == "CACHED":
            cached.add(number)
    return {name: number in cached for number, name in names.items()}


def run_in(engine: DockerEngine, image: str, *command: str) -> str:
    return engine.run(["run", "--rm", "--network", "none", "--entrypoint", command[0], image, *command[1:]]).stdout


def test_images_are_named_after_registry_namespace_job_and_tag(tmp_path: Path) -> None:
    with_registry = docker_settings(tmp_path, docker_registry="127.0.0.1:5000", docker_registry_namespace="ns")
    assert image_reference(with_registry, "adder", "T1") == "127.0.0.1:5000/ns/job-entrypoint/adder:T1"
    assert image_reference(docker_settings(tmp_path), "adder", "T1") == "trackside-test/job-entrypoint/adder:T1"


def test_a_rebuild_of_unchanged_source_reuses_the_layer_cache_and_no_cache_rebuilds(
    engine: DockerEngine, tmp_path: Path
) -> None:
    settings = docker_settings(tmp_path)
    name = unique("cached")
    files = {"job.py": ADDER, "data.txt": unique("content-")}
    images = []
    try:
        logs: list[list[str]] = [[], [], []]
        images.append(build(engine, settings, tmp_path / "a", python_manifest(name), files, log=logs[0].append))
        images.append(build(engine, settings, tmp_path / "b", python_manifest(name), files, log=logs[1].append))
        images.append(
            build(engine, settings, tmp_path / "c", python_manifest(name), files, log=logs[2].append, no_cache=True)
        )
        first, second, forced = (steps(log) for log in logs)
        assert any("COPY src/ /src/job/" in step for step in second)
        # The second time every step comes from the cache; with --no-cache none after FROM does.
        assert all(cached for step, cached in second.items() if "FROM" not in step), second
        assert not any(cached for step, cached in forced.items() if "FROM" not in step), forced
        assert first.keys() == second.keys() == forced.keys()
        assert "perform" in run_in(engine, images[0], "cat", "/src/job/job.py")
    finally:
        remove_images(engine, *images)


def test_build_secrets_reach_the_build_but_never_a_layer_or_the_history(engine: DockerEngine, tmp_path: Path) -> None:
    settings = docker_settings(tmp_path)
    dockerfile = (
        "FROM trackside/python3-base:bookworm\n"
        "RUN --mount=type=secret,id=build_secrets,target=/run/secrets/build_secrets.env "
        '. /run/secrets/build_secrets.env && printf %s "$API_TOKEN" | sha256sum | cut -d" " -f1 > /token.sha\n'
        'CMD ["cat", "/token.sha"]\n'
    )
    lines: list[str] = []
    image = build(
        engine,
        settings,
        tmp_path / "ws",
        dockerfile_manifest(unique("secretive")),
        {"Dockerfile": dockerfile},
        log=lines.append,
        secret_build_env={"API_TOKEN": SECRET},
    )
    try:
        assert run_in(engine, image, "cat", "/token.sha").strip() == hashlib.sha256(SECRET.encode()).hexdigest()
        history = engine.run(["history", "--no-trunc", image]).stdout
        inspect = engine.run(["image", "inspect", image]).stdout
        assert "build_secrets" in history  # the step is there...
        assert SECRET not in history and SECRET not in inspect  # ...the value is not
        assert run_in(engine, image, "sh", "-c", "ls /run/secrets 2>/dev/null | wc -l").strip() == "0"
        saved = subprocess.run(engine.command(["save", image]), capture_output=True, check=True).stdout
        assert SECRET.encode() not in saved
    finally:
        remove_images(engine, image)


def test_requirements_are_installed_offline_from_wheels_fetched_on_the_host(
    engine: DockerEngine, tmp_path: Path
) -> None:
    settings = docker_settings(tmp_path)
    job = "import six\n\nclass Job:\n    def perform(self):\n        return six.__version__\n"
    lines: list[str] = []
    image = build(
        engine,
        settings,
        tmp_path / "ws",
        python_manifest(unique("withreqs")),
        {"job.py": job, "requirements.txt": "six==1.16.0\n"},
        log=lines.append,
    )
    try:
        log = "\n".join(lines)
        install_step = [line for line in lines if line.startswith("#") and "pip install" in line]
        assert install_step and "--no-index" in install_step[0], log  # installed from the wheels only
        assert list((tmp_path / "cache" / "wheels").glob("*/six-1.16.0-*.whl"))  # fetched on the host
        assert run_in(engine, image, "/job-venv/bin/python", "-c", "import six; print(six.__version__)").strip() == (
            "1.16.0"
        )
    finally:
        remove_images(engine, image)


def test_a_failing_dockerfile_fails_the_build_showing_the_failing_step(engine: DockerEngine, tmp_path: Path) -> None:
    settings = docker_settings(tmp_path)
    dockerfile = "FROM trackside/python3-base:bookworm\nRUN echo compiling-the-thing && exit 7\n"
    lines: list[str] = []
    with pytest.raises(BuildFailed) as failure:
        build(
            engine,
            settings,
            tmp_path / "ws",
            dockerfile_manifest(unique("broken")),
            {"Dockerfile": dockerfile},
            log=lines.append,
        )
    assert "image build failed" in failure.value.message
    assert "echo compiling-the-thing && exit 7" in failure.value.message
    assert "exit code: 7" in failure.value.message or "code 7" in failure.value.message
    assert any("compiling-the-thing" in line for line in lines)  # streamed into the build log


def test_a_missing_dockerfile_or_base_image_is_named(engine: DockerEngine, tmp_path: Path) -> None:
    settings = docker_settings(tmp_path)
    with pytest.raises(BuildFailed, match=r"Dockerfile 'Nope\.Dockerfile' \(jobtype_extra.dockerfile_path\)"):
        build(
            engine,
            settings,
            tmp_path / "a",
            dockerfile_manifest(unique("x"), jobtype_extra={"dockerfile_path": "Nope.Dockerfile"}),
            {"main.go": "package main\n"},
        )
    missing_base = docker_settings(tmp_path, docker_base_images={"python3": "trackside/no-such-base:1"})
    with pytest.raises(BuildFailed, match="base image trackside/no-such-base:1 is not on Docker engine"):
        build(engine, missing_base, tmp_path / "b", python_manifest(unique("x")), {"job.py": ADDER})


def test_an_unreachable_daemon_or_registry_is_named(engine: DockerEngine, tmp_path: Path) -> None:
    settings = docker_settings(tmp_path)
    nowhere = DockerEngine(EngineConfig(url="tcp://127.0.0.1:1"))
    with pytest.raises(Unavailable, match=r"Docker engine tcp://127\.0\.0\.1:1 is not reachable"):
        build(nowhere, settings, tmp_path / "a", python_manifest(unique("x")), {"job.py": ADDER})
    image = f"127.0.0.1:1/{unique('ns')}/job-entrypoint/x:t1"
    engine.run(["tag", "trackside/python3-base:bookworm", image])
    try:
        with pytest.raises(Unavailable, match=r"registry 127\.0\.0\.1:1 is not reachable"):
            push_image(engine, image, "127.0.0.1:1", lambda line: None)
    finally:
        remove_images(engine, image)


def test_images_are_pushed_to_the_configured_registry(engine: DockerEngine, tmp_path: Path) -> None:
    registry = require_registry()
    settings = docker_settings(tmp_path, docker_registry=registry)
    lines: list[str] = []
    image = build(
        engine, settings, tmp_path / "ws", python_manifest(unique("pushed")), {"job.py": ADDER}, log=lines.append
    )
    try:
        assert image.startswith(f"{registry}/trackside-test/job-entrypoint/")
        assert "--- pushing image (1/1)" in lines
        repo, tag = image.removeprefix(f"{registry}/").rsplit(":", 1)
        import httpx

        assert tag in httpx.get(f"http://{registry}/v2/{repo}/tags/list", timeout=10).json()["tags"]
    finally:
        remove_images(engine, image)
