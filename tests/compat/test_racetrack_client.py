"""Racetrack's own `racetrack` CLI (PyPI racetrack-client) works against `trackside up`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import EXAMPLES
from tests.support.platform import RunningPlatform, deploy_and_wait, start_platform, write_job
from tests.support.ports import free_port

pytestmark = pytest.mark.slow

RACETRACK_CLIENT = "racetrack-client==2.35.1"


@pytest.fixture(scope="session")
def racetrack_cli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real `racetrack` command, installed with uv into a virtualenv of its own."""
    import uv

    venv = tmp_path_factory.mktemp("racetrack-client") / "venv"
    uv_bin = uv.find_uv_bin()
    try:
        subprocess.run([uv_bin, "venv", "--python", sys.executable, str(venv)], check=True, capture_output=True)
        subprocess.run(
            [uv_bin, "pip", "install", "--python", str(venv / "bin" / "python"), RACETRACK_CLIENT],
            check=True,
            capture_output=True,
            timeout=300,
        )
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"installing {RACETRACK_CLIENT} failed: {exc.stderr.decode(errors='replace')}")
    return venv / "bin" / "racetrack"


class Racetrack:
    """The `racetrack` command of one user (a HOME of its own), logged in to one platform."""

    def __init__(self, cli: Path, home: Path, platform: RunningPlatform, path: str | None = None) -> None:
        home.mkdir(exist_ok=True)
        self.cli = cli
        self.env = {**os.environ, "HOME": str(home)}
        if path is not None:
            self.env["PATH"] = f"{path}{os.pathsep}{self.env['PATH']}"
        self("set", "remote", platform.url)
        self("login", platform.admin_token)  # auth is on: `racetrack login TOKEN` checks and saves it

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(self.cli), *args], capture_output=True, text=True, env=self.env, timeout=180)
        if check and result.returncode != 0:
            raise AssertionError(
                f"racetrack {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def start(self, *args: str) -> subprocess.Popen[str]:
        """`racetrack ARGS` left running (run-local, logs -f), its output in a pipe, line by line
        (Python buffers a pipe's output otherwise, and a followed line would wait in the buffer)."""
        env = {**self.env, "PYTHONUNBUFFERED": "1"}
        return subprocess.Popen(
            [str(self.cli), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )


@pytest.fixture
def racetrack(racetrack_cli: Path, tmp_path: Path, platform: RunningPlatform) -> Racetrack:
    return Racetrack(racetrack_cli, tmp_path / "home", platform)


def test_racetrack_client_deploys_lists_reads_logs_and_deletes(
    racetrack: Racetrack, platform: RunningPlatform, tmp_path: Path
) -> None:
    workdir = tmp_path / "adder"
    shutil.copytree(EXAMPLES / "adder", workdir)
    racetrack("deploy", str(workdir))
    job = platform.http.get(f"{platform.api}/job/adder/0.0.1").json()
    assert job["status"] == "running"
    assert job["pub_url"].endswith("/pub/job/adder/0.0.1")
    answer = platform.http.post(f"{platform.url}/pub/job/adder/latest/api/v1/perform", json={"a": 40, "b": 2})
    assert answer.json() == 42

    listed = racetrack("list")
    assert "adder" in listed.stdout and "0.0.1" in listed.stdout and "RUNNING" in listed.stdout

    logs = racetrack("logs", "adder")
    assert logs.returncode == 0
    build_logs = racetrack("build-logs", "adder")
    assert "virtualenv" in build_logs.stdout + build_logs.stderr

    refused = racetrack("deploy", str(workdir), check=False)
    assert refused.returncode != 0
    assert "immutable" in refused.stdout + refused.stderr

    racetrack("delete", "adder", "--version", "0.0.1")
    assert platform.http.get(f"{platform.api}/job").json() == []


def test_racetrack_list_shows_when_each_job_was_last_called(
    racetrack: Racetrack, platform: RunningPlatform, tmp_path: Path
) -> None:
    workdir = tmp_path / "adder"
    shutil.copytree(EXAMPLES / "adder", workdir)
    racetrack("deploy", str(workdir))
    assert platform.http.get(f"{platform.api}/job/adder/0.0.1").json()["last_call_time"] is None
    never = racetrack("list", "-c", "all").stdout
    assert "LAST CALL AT" in never and "never" in never

    called_at = int(time.time())
    answer = platform.http.post(f"{platform.url}/pub/job/adder/latest/api/v1/perform", json={"a": 40, "b": 2})
    assert answer.json() == 42

    # The supervisor copies the time the job's replicas report into the store.
    deadline = time.monotonic() + 60
    while (last_call := platform.http.get(f"{platform.api}/job/adder/0.0.1").json()["last_call_time"]) is None:
        assert time.monotonic() < deadline, "last_call_time never reached the job API"
        time.sleep(0.2)
    assert called_at - 1 <= last_call <= time.time() + 1
    listed = racetrack("list", "-c", "all").stdout
    row = next(line for line in listed.splitlines() if line.startswith("adder"))
    assert "never" not in row and ("ago" in row or "just now" in row), listed


# This machine's Docker engine has no bridge network (scripts/docker-setup), so the `-p PORT:7000`
# of run-local's `docker run` publishes nothing. A stand-in for `docker`, and only for `docker run`:
# the container runs on the host network, its job listening on that port (and without `-it`, as
# the test has no terminal). Every other docker command, and the run's other arguments, go through.
DOCKER_RUN_ON_HOST_NETWORK = """\
import os, sys
args = sys.argv[1:]
if args[:1] == ["run"]:
    rest, out = iter(args[1:]), ["run", "--network", "host"]
    for arg in rest:
        if arg == "-it":
            continue
        if arg == "-p":
            out += ["--env", "PORT=" + next(rest).split(":")[0]]
            continue
        out.append(arg)
    args = out
os.execv("/usr/bin/docker", ["docker", *args])
"""


@pytest.fixture
def docker_platform(tmp_path: Path, database_url: str) -> Iterator[RunningPlatform]:
    from tests.infra.docker.support import REGISTRY, TEST_NAMESPACE, require_engine, require_registry

    require_engine()
    require_registry()
    env = {"TRACKSIDE_DOCKER_REGISTRY": REGISTRY, "TRACKSIDE_DOCKER_REGISTRY_NAMESPACE": TEST_NAMESPACE}
    running = start_platform(tmp_path / "data", database_url, extra_env=env)
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.docker
def test_racetrack_run_local_builds_the_image_without_deploying_and_runs_it(
    racetrack_cli: Path, docker_platform: RunningPlatform, tmp_path: Path
) -> None:
    from tests.infra.docker.support import ADDER, unique

    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "docker").write_text(f"#!{sys.executable}\n{DOCKER_RUN_ON_HOST_NETWORK}")
    (shim / "docker").chmod(0o755)
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    # run-local runs `docker login REGISTRY`: stored credentials let it log in without a prompt.
    (home / ".docker" / "config.json").write_text('{"auths": {"127.0.0.1:5000": {"auth": "eDp4"}}}')
    racetrack = Racetrack(racetrack_cli, home, docker_platform, path=str(shim))
    name = unique("runlocal")
    # Racetrack's client wants a git remote; a local platform and sample@example.com make it upload instead.
    git = "git:\n  remote: https://github.com/TheRacetrack/racetrack\n"
    job_dir = write_job(tmp_path / name, name, ADDER, extra=git)
    port = free_port()
    container = f"local-job-{name}-v-0-0-1"

    client = racetrack.start("run-local", str(job_dir), "--port", str(port))
    try:
        url = f"http://127.0.0.1:{port}/pub/job/{name}/0.0.1/api/v1/perform"
        deadline = time.monotonic() + 300
        while True:
            assert client.poll() is None, f"run-local ended:\n{client.stdout.read() if client.stdout else ''}"
            assert time.monotonic() < deadline, "the job run by run-local never answered"
            try:
                answer = httpx.post(url, json={"a": 40, "b": 2}, timeout=5)
                if answer.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        assert answer.json() == 42
    finally:
        subprocess.run(["/usr/bin/docker", "rm", "-f", container], capture_output=True, timeout=60)
        client.terminate()
        output = client.communicate(timeout=60)[0]

    assert f"Pulling from trackside-test/job-entrypoint/{name}" in output, output  # the image it reported
    assert docker_platform.http.get(f"{docker_platform.api}/job").json() == [], "a build deploys nothing"
    build = next(d for d in docker_platform.http.get(f"{docker_platform.api}/deploy").json() if d["job_name"] == name)
    assert build["status"] == "done" and build["job"] is None
    assert build["image_name"].startswith(f"127.0.0.1:5000/trackside-test/job-entrypoint/{name}:")
    assert not (docker_platform.data_dir / "builds" / name / "0.0.1").exists() or not any(
        (docker_platform.data_dir / "builds" / name / "0.0.1").iterdir()
    ), "the build's workspace is gone once its image is pushed"


SAYER = """\
class Job:
    def perform(self, word="nothing"):
        print(f"said {word}", flush=True)
        return word
"""


def test_racetrack_logs_follow_streams_over_socketio_with_the_token_checks(
    racetrack: Racetrack, platform: RunningPlatform, tmp_path: Path
) -> None:
    assert deploy_and_wait(platform, write_job(tmp_path / "sayer", "sayer", SAYER))["status"] == "done"

    # Racetrack's client sends no token over Socket.IO, but its HTTP library reads ~/.netrc: a token
    # kept there (as the password) reaches the stream.
    netrc = Path(racetrack.env["HOME"]) / ".netrc"
    netrc.write_text(f"machine 127.0.0.1 login racetrack password {platform.admin_token}\n")
    netrc.chmod(0o600)
    lines: list[str] = []
    followers: list[tuple[subprocess.Popen[str], threading.Thread]] = []

    def follow() -> subprocess.Popen[str]:
        process = racetrack.start("logs", "sayer", "-f")

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        followers.append((process, reader))
        return process

    follower = follow()
    restarts = 0
    try:
        deadline = time.monotonic() + 240
        word = "w0"
        while not any(f"said {word}" in line for line in lines):
            if follower.poll() is not None:
                # The client gives up when the server's answer to its subscription takes over 60 s (a
                # machine under heavy load): it may start again, once.
                assert restarts == 0 and "TimeoutError" in "".join(lines), "".join(lines)
                restarts += 1
                follower = follow()
            assert time.monotonic() < deadline, "the followed log never showed the new line:\n" + "".join(lines)
            word = f"w{int(time.monotonic() * 1000)}"
            platform.http.post(f"{platform.url}/pub/job/sayer/latest/api/v1/perform", json={"word": word})
            time.sleep(1)
    finally:
        for process, reader in followers:
            process.terminate()
            process.wait(timeout=30)
            reader.join(timeout=30)  # it ends at the pipe's end of file
            if process.stdout is not None:
                process.stdout.close()

    # Without the token the stream is refused.
    netrc.unlink()
    refused = racetrack.start("logs", "sayer", "-f")
    try:
        output = refused.communicate(timeout=120)[0]
    finally:
        refused.kill()
    assert refused.returncode != 0, output
    assert "said" not in output


@pytest.mark.docker
def test_racetrack_client_moves_calls_validates_and_keeps_its_session(
    racetrack_cli: Path, docker_platform: RunningPlatform, tmp_path: Path
) -> None:
    """The rest of the client's commands that need no internet (reference: the client's command table):
    validate, call (and --curl), move, get pub / remote / auth-token, plugin download, logout, login
    with a username."""
    from tests.infra.docker.support import unique

    racetrack = Racetrack(racetrack_cli, tmp_path / "home", docker_platform)
    name = unique("rtclient")
    workdir = tmp_path / name
    shutil.copytree(EXAMPLES / "adder", workdir)
    manifest = workdir / "job.yaml"
    manifest.write_text(manifest.read_text().replace("name: adder", f"name: {name}"))

    validated = racetrack("validate", str(workdir))
    assert f"name: {name}" in validated.stdout + validated.stderr

    racetrack("deploy", str(workdir))
    called = racetrack("call", name, "/api/v1/perform", '{"a": 40, "b": 2}')
    assert called.stdout.strip().splitlines()[-1] == "42"
    curl = racetrack("call", name, "/api/v1/perform", '{"a": 1, "b": 2}', "--curl")
    assert curl.stdout.startswith("curl") and f"/pub/job/{name}/" in curl.stdout
    assert docker_platform.http.get(f"{docker_platform.api}/job").json()[0]["name"] == name  # --curl only prints

    racetrack("move", name, "--version", "0.0.1", "--infrastructure", "docker")
    job = docker_platform.http.get(f"{docker_platform.api}/job/{name}/0.0.1").json()
    assert (job["infrastructure_target"], job["status"]) == ("docker", "running")
    answer = docker_platform.http.post(
        f"{docker_platform.url}/pub/job/{name}/latest/api/v1/perform", json={"a": 2, "b": 2}
    )
    assert answer.json() == 4

    assert racetrack("get", "pub", "-q").stdout.strip() == f"{docker_platform.url}/pub"
    assert racetrack("get", "remote", "-q").stdout.strip() == f"{docker_platform.url}/lifecycle"
    assert racetrack("get", "auth-token").stdout.strip() == docker_platform.admin_token

    racetrack("plugin", "install", str(_adder_plugin_zip(tmp_path)))
    out_dir = tmp_path / "downloaded"
    out_dir.mkdir()
    racetrack("plugin", "download", "trackside-test-plugin", "1.0.0", "--out-dir", str(out_dir))
    assert [p.name for p in out_dir.iterdir()] == ["trackside-test-plugin-1.0.0.zip"]

    racetrack("logout")
    refused = racetrack("list", check=False)
    assert refused.returncode != 0 and name not in refused.stdout
    password = docker_platform.admin_password
    login = subprocess.run(
        [str(racetrack.cli), "login", "--username", "admin"],
        input=f"{password}\n",
        capture_output=True,
        text=True,
        env=racetrack.env,
        timeout=180,
        start_new_session=True,  # no controlling terminal: getpass reads the password from stdin
    )
    assert login.returncode == 0, login.stdout + login.stderr
    assert name in racetrack("list").stdout

    racetrack("delete", name, "--version", "0.0.1")


def _adder_plugin_zip(tmp_path: Path) -> Path:
    """A minimal plugin (a manifest and an empty class), zipped as `racetrack plugin bundle` would."""
    import zipfile

    path = tmp_path / "trackside-test-plugin-1.0.0.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("plugin-manifest.yaml", "name: trackside-test-plugin\nversion: 1.0.0\n")
        archive.writestr("plugin.py", "class Plugin:\n    pass\n")
    return path
