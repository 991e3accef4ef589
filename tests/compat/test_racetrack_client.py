"""Racetrack's own `racetrack` CLI (PyPI racetrack-client) works against `trackside up`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import EXAMPLES
from tests.support.platform import RunningPlatform

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


@pytest.fixture
def racetrack(racetrack_cli: Path, tmp_path: Path, platform: RunningPlatform) -> Iterator:
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(racetrack_cli), *args], capture_output=True, text=True, env=env, timeout=180)
        if check and result.returncode != 0:
            raise AssertionError(
                f"racetrack {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    run("set", "remote", platform.url)
    run("login", platform.admin_token)  # auth is on: `racetrack login TOKEN` checks and saves it
    yield run


def test_racetrack_client_deploys_lists_reads_logs_and_deletes(
    racetrack, platform: RunningPlatform, tmp_path: Path
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
    racetrack, platform: RunningPlatform, tmp_path: Path
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
