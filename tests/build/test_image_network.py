"""Image builds on a real Docker engine: the network of `RUN` steps, local images for the names
Dockerfiles use, and what the build log says when an image cannot be pulled."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.infra.docker.support import BASE_IMAGE, build, docker_settings, dockerfile_manifest, remove_jobs, unique

from trackside.build.images import build_network
from trackside.config import Settings
from trackside.errors import BuildFailed
from trackside.infra.docker.engine import DockerEngine

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# A RUN step that fetches from a server on the build host's loopback: it works only on the host's network.
FETCHING = """\
FROM {base}
RUN python3 -c "import urllib.request as u; print('fetched', u.urlopen('http://127.0.0.1:{port}/').read().decode())"
CMD ["python3", "-c", "print(1)"]
"""


@pytest.fixture(scope="module")
def engine() -> DockerEngine:
    from tests.infra.docker.support import require_engine

    return require_engine()


@pytest.fixture
def package_server() -> Iterator[int]:
    """A server on this host's loopback, as a package index would be to a build (a token per test)."""
    token = unique("pkg-")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = token.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.token = token  # type: ignore[attr-defined]
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()  # the listening socket: left to the GC it is a ResourceWarning, an error here


def build_fetching(engine: DockerEngine, settings: Settings, tmp_path: Path, port: int, lines: list[str]) -> None:
    """Build a job whose Dockerfile fetches from the host's package server on `port`, its log into `lines`."""
    name = unique("net")
    try:
        build(
            engine,
            settings,
            tmp_path / "ws",
            dockerfile_manifest(name),
            {"Dockerfile": FETCHING.format(base=BASE_IMAGE, port=port)},
            log=lines.append,
        )
    finally:
        remove_jobs(engine, name)


def _engine_has_bridge(engine: DockerEngine) -> bool:
    return "bridge" in engine.run(["network", "ls", "--format", "{{.Name}}"]).stdout.split()


def test_by_default_builds_get_the_engines_network_host_where_it_has_no_bridge(
    engine: DockerEngine, tmp_path: Path, package_server: int
) -> None:
    settings = docker_settings(tmp_path)
    assert settings.docker_build_network == "auto"
    expected = "default" if _engine_has_bridge(engine) else "host"
    assert build_network(engine, settings) == expected
    if expected != "host":
        pytest.skip("this engine has a bridge network: builds get it, and the host's loopback is not theirs")
    lines: list[str] = []
    build_fetching(engine, settings, tmp_path, package_server, lines)
    text = "\n".join(lines)
    assert "build network: host (setting docker_build_network: auto)" in text
    assert "fetched pkg-" in text  # the RUN step reached the host's server


def test_the_operator_can_take_the_network_away_from_builds(
    engine: DockerEngine, tmp_path: Path, package_server: int
) -> None:
    settings = docker_settings(tmp_path, docker_build_network="none")
    lines: list[str] = []
    with pytest.raises(BuildFailed, match="image build failed"):
        build_fetching(engine, settings, tmp_path, package_server, lines)
    assert "build network: none (setting docker_build_network: none)" in "\n".join(lines)


def test_images_named_in_a_dockerfile_are_mapped_to_local_ones(engine: DockerEngine, tmp_path: Path) -> None:
    settings = docker_settings(
        tmp_path, docker_image_map={"python:3.9-slim-bullseye": BASE_IMAGE}, docker_build_network="none"
    )
    name = unique("mapped")
    dockerfile = "FROM python:3.9-slim-bullseye\nRUN python3 -c 'print(\"inside the mapped image\")'\n"
    lines: list[str] = []
    try:
        image = build(
            engine, settings, tmp_path / "ws", dockerfile_manifest(name), {"Dockerfile": dockerfile}, log=lines.append
        )
        assert engine.image_exists(image)
    finally:
        remove_jobs(engine, name)
    text = "\n".join(lines)
    assert f"image python:3.9-slim-bullseye -> {BASE_IMAGE} (setting docker_image_map, Dockerfile line 1)" in text
    assert "inside the mapped image" in text


def test_an_image_the_engine_cannot_pull_is_named_in_the_build_log_with_the_setting(
    engine: DockerEngine, tmp_path: Path
) -> None:
    # An image no registry has (whether or not this engine can reach one): the pull fails either way.
    missing = f"trackside-nowhere-{unique('')}/nothing:1"
    settings = docker_settings(tmp_path, docker_build_network="none")
    name = unique("nopull")
    lines: list[str] = []
    try:
        with pytest.raises(BuildFailed) as failure:
            build(
                engine,
                settings,
                tmp_path / "ws",
                dockerfile_manifest(name),
                {"Dockerfile": f"FROM {missing}\nCMD true\n"},
                log=lines.append,
            )
    finally:
        remove_jobs(engine, name)
    text = "\n".join(lines)
    assert f"image {missing} is not on Docker engine" in text
    hint = f"the Docker engine could not pull image {missing}: map it to an image the engine has with the setting"
    assert hint in text and "docker_image_map" in text
    assert hint in failure.value.message
