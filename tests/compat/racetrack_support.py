"""Racetrack's job-type plugins and Dockerfile samples on a real `trackside up` with a docker target.

The public base images Racetrack's templates and samples name (`python:3.x-slim-bullseye`) can't be
pulled here: the platform maps them (`docker_image_map`) to a local image made once from the
debootstrapped base (`scripts/docker-setup`) with what those images bring that it lacks (`pip`,
`python`, a pip allowed to install system-wide). Making it takes Debian's mirror, which builds reach
over the engine's network; where that can't be reached the tests skip, saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from tests.conftest import REPO_ROOT
from tests.infra.docker.support import BASE_IMAGE, TEST_NAMESPACE
from tests.support.cli import Cli as Cli
from tests.support.cli import trackside_cli as trackside_cli
from tests.support.platform import RunningPlatform, start_platform

from trackside.infra.docker.engine import DockerEngine

SHARED = Path(os.environ.get("TRACKSIDE_SHARED_DIR", str(REPO_ROOT.parent / "shared")))
RACETRACK = SHARED / "racetrack"
SAMPLES = RACETRACK / "sample"
PYTHON_PLUGIN = RACETRACK / "plugins" / "plugin-python-job-type" / "src"
PROXY_PLUGIN = RACETRACK / "plugins" / "plugin-docker-proxy-job-type" / "src"
PYTHON_PLUGIN_JOB_TYPE = "python3:2.15.1"
PROXY_PLUGIN_JOB_TYPE = "docker-proxy:3.2.2"

# python:3.x-slim* as far as Racetrack's templates and samples need it.
PYTHON_IMAGE = "trackside-test/racetrack-python:bookworm"
PYTHON_IMAGE_DOCKERFILE = f"""\
FROM {BASE_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends python3-pip python-is-python3 \\
    && rm -rf /var/lib/apt/lists/* /usr/lib/python3*/EXTERNALLY-MANAGED
{{trust}}
"""
# The certificate authorities this host trusts, trusted in the stand-ins too: a machine that reaches
# PyPI through a TLS-inspecting proxy needs base images that trust it, as an operator's would.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
TRUST = """\
COPY host-ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \\
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
"""
# golang:1.x-alpine for the Go sample: Debian's Go (1.19 in bookworm) with GOPATH's bin on PATH.
GOLANG_IMAGE = "trackside-test/racetrack-golang:bookworm"
GOLANG_IMAGE_DOCKERFILE = f"""\
FROM {BASE_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends golang-go ca-certificates git \\
    && rm -rf /var/lib/apt/lists/*
ENV GOPATH=/go PATH=/go/bin:/usr/lib/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
{{trust}}
"""
IMAGE_MAP = {"python:*": PYTHON_IMAGE, "golang:*": GOLANG_IMAGE}


def require_shared() -> None:
    if not (PYTHON_PLUGIN.is_dir() and PROXY_PLUGIN.is_dir() and SAMPLES.is_dir()):
        pytest.skip(f"Racetrack's samples and plugins are not at {RACETRACK} (set TRACKSIDE_SHARED_DIR)")


def reachable(url: str, timeout: float = 5) -> bool:
    """Can this host open a TCP connection to the URL's host (as a build on the host's network would)?"""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def python_image(engine: DockerEngine) -> str:
    """The local stand-in for python:3.x-slim, made once (it needs Debian's mirror)."""
    return local_image(engine, PYTHON_IMAGE, PYTHON_IMAGE_DOCKERFILE)


def local_image(engine: DockerEngine, image: str, dockerfile: str) -> str:
    """A stand-in for a public image, built once on the engine's host network from Debian's packages."""
    if engine.image_exists(image):
        return image
    if not reachable("http://deb.debian.org/debian/"):
        pytest.skip(f"making {image} (a stand-in for a public image) needs Debian's mirror, which can't be reached")
    with tempfile.TemporaryDirectory(prefix="trackside-stand-in-") as context:
        trust = ""
        if HOST_CA_BUNDLE.is_file():
            shutil.copyfile(HOST_CA_BUNDLE, Path(context) / "host-ca-certificates.crt")
            trust = TRUST
        (Path(context) / "Dockerfile").write_text(dockerfile.replace("{trust}", trust))
        result = subprocess.run(
            engine.command(["build", "--network", "host", "-t", image, context]),
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
        )
    assert result.returncode == 0, f"building {image} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return image


def start_docker_platform(data_dir: Path, database_url: str) -> RunningPlatform:
    """`trackside up` whose docker target builds with Racetrack's base images mapped to local ones."""
    return start_platform(
        data_dir,
        database_url,
        extra_env={
            "TRACKSIDE_DOCKER_REGISTRY_NAMESPACE": TEST_NAMESPACE,
            "TRACKSIDE_DOCKER_IMAGE_MAP": json.dumps(IMAGE_MAP),
            "TRACKSIDE_JOB_READY_TIMEOUT": "180",
        },
    )


def racetrack_runner(executable: Path, platform: RunningPlatform, home: Path) -> Cli:
    """Racetrack's own client (PyPI racetrack-client) with its own HOME, logged in to the platform."""
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HOME": str(home)}

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(executable), *args], capture_output=True, text=True, env=env, timeout=180)
        if check:
            assert result.returncode == 0, f"racetrack {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result

    run("set", "remote", platform.url)
    run("login", platform.admin_token)
    return run


def install_racetrack_plugins(racetrack: Cli, trackside: Cli, out: Path) -> dict[str, Path]:
    """Both of Racetrack's job-type plugins, bundled and installed with a different client each way.

    The plugin directories are read-only here: a bundle is written to `out` only."""
    (out / "python").mkdir(parents=True, exist_ok=True)
    (out / "proxy").mkdir(parents=True, exist_ok=True)
    racetrack("plugin", "bundle", str(PYTHON_PLUGIN), "--out", str(out / "python"))
    trackside("plugin", "bundle", str(PROXY_PLUGIN), "--out", str(out / "proxy"))
    (python_zip,) = (out / "python").glob("*.zip")
    (proxy_zip,) = (out / "proxy").glob("*.zip")
    trackside("plugin", "install", str(python_zip))
    racetrack("plugin", "install", str(proxy_zip))
    return {"python": python_zip, "proxy": proxy_zip}


def copy_sample(name: str, destination: Path) -> Path:
    """A sample's directory, copied as it is (the shared copy stays untouched)."""
    target = destination / name
    shutil.copytree(SAMPLES / name, target)
    return target


def call_when_up(http: httpx.Client, url: str, payload: object, timeout: float = 120) -> httpx.Response:
    """POST to a multi-container job once its own server answers behind the proxy.

    Racetrack's docker-proxy is ready as soon as the proxy is; the job's own server (another container
    beside it) may still be starting, and the proxy answers 500 (`ConnectError`) until it listens."""
    deadline = time.monotonic() + timeout
    while True:
        response = http.post(url, json=payload)
        starting = response.status_code == 500 and "ConnectError" in response.text
        if not starting or time.monotonic() > deadline:
            return response
        time.sleep(0.5)
