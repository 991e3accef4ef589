"""The `trackside` command against a real running platform: deploy, list, call, logs, delete.

Every command runs as a real process (`python -m trackside.cli.main`), as a user would run it.
`platform_url` (tests/conftest.py) is a fresh `trackside up` on a free port.
"""

from __future__ import annotations

import json
import select
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.platform import RunningPlatform

REPO_ROOT = Path(__file__).resolve().parents[2]
ADDER = REPO_ROOT / "examples" / "adder"

pytestmark = pytest.mark.slow


def trackside(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trackside.cli.main", *args], capture_output=True, text=True, timeout=timeout
    )


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def assert_no_cli_traceback(stderr: str) -> None:
    assert "trackside/cli/" not in stderr, stderr


@pytest.fixture(autouse=True)
def logged_in(platform: RunningPlatform) -> None:
    """Auth is on: every test's CLI (its own client config dir) logs in as the platform's admin first."""
    assert_ok(trackside("login", platform.admin_token, "--remote", platform.url))


def test_deploy_list_call_logs_delete(platform_url: str) -> None:
    deployed = trackside("deploy", str(ADDER), "--remote", platform_url)
    assert_ok(deployed)
    url = deployed.stdout.strip().splitlines()[-1]
    assert url.endswith("/pub/job/adder/0.0.1"), deployed.stdout

    listed = trackside("list", "--remote", platform_url)
    assert_ok(listed)
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert rows[0] == ["NAME", "VERSION", "STATUS", "TARGET", "URL"]
    assert rows[1][:3] == ["adder", "0.0.1", "RUNNING"]
    assert rows[1][4] == url

    called = trackside("call", "adder", '{"a": 40, "b": 2}', "--remote", platform_url)
    assert_ok(called)
    assert json.loads(called.stdout) == 42

    yaml_payload = trackside(
        "call", "adder", "/api/v1/perform", "a: 40\nb: 2", "--version", "0.x", "--remote", platform_url
    )
    assert_ok(yaml_payload)
    assert json.loads(yaml_payload.stdout) == 42

    curl = trackside("call", "adder", '{"a": 1, "b": 2}', "--curl", "--remote", platform_url)
    assert_ok(curl)
    assert f"{url}/api/v1/perform" in shlex.split(curl.stdout)

    assert_ok(trackside("logs", "adder", "--remote", platform_url))
    build_logs = trackside("build-logs", "adder", "--version", "0.0.1", "--remote", platform_url)
    assert_ok(build_logs)
    assert build_logs.stdout.strip(), "build logs are empty"

    deleted = trackside("delete", "adder", "--version", "0.0.1", "--remote", platform_url)
    assert_ok(deleted)
    after = trackside("list", "--remote", platform_url)
    assert_ok(after)
    assert after.stdout.splitlines() == ["NAME\tVERSION\tSTATUS\tTARGET\tURL"]


def test_deploy_with_a_bad_entrypoint_fails_with_exit_1(platform_url: str, tmp_path: Path) -> None:
    job = tmp_path / "broken"
    shutil.copytree(ADDER, job, ignore=shutil.ignore_patterns(".venv", "__pycache__"))

    result = trackside(
        "deploy",
        str(job),
        "-e",
        "jobtype_extra.entrypoint_path=missing.py",
        "-e",
        "name=broken",
        "--remote",
        platform_url,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1, result.stderr
    assert error_lines[0].startswith("error: deploy failed: "), result.stderr
    assert_no_cli_traceback(result.stderr)


def test_unknown_job_is_one_error_line(platform_url: str) -> None:
    result = trackside("delete", "nosuchjob", "--version", "1.0.0", "--remote", platform_url)

    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: ")
    assert "nosuchjob" in result.stderr


def test_logs_follow_stops_cleanly_on_ctrl_c(platform_url: str) -> None:
    assert_ok(trackside("deploy", str(ADDER), "--remote", platform_url))
    follower = subprocess.Popen(
        [sys.executable, "-m", "trackside.cli.main", "logs", "adder", "-f", "--remote", platform_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Ctrl-C only once the follow is live (its first line printed), however slow the start is.
        assert follower.stdout is not None
        ready, _, _ = select.select([follower.stdout], [], [], 60)
        assert ready and follower.stdout.readline(), f"follow printed nothing: {follower.poll()}"
        assert follower.poll() is None, f"follow ended early: {follower.communicate()}"
        follower.send_signal(signal.SIGINT)
        stdout, stderr = follower.communicate(timeout=10)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, stderr
    assert_no_cli_traceback(stderr)
    assert "Traceback" not in stderr
