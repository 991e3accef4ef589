"""A platform worth backing up (jobs, a user, an ESC with a grant and secrets) and the CLI to do it."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import EXAMPLES
from tests.support.platform import RunningPlatform, deploy_and_wait, write_job

PASSWORD = "Quiet-Harbour-Lantern-71"
SECRET_VALUE = "backup-secret-value-4cd1"
# The job answers whether it got the secret, so the value itself is in no response or log.
SECRET_JOB = (
    f"import os\nclass Job:\n    def perform(self):\n        return os.environ.get('MY_SECRET') == {SECRET_VALUE!r}\n"
)


def trackside(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trackside.cli.main", *args], input=stdin, capture_output=True, text=True, timeout=600
    )


def settings_args(data_dir: Path, database_url: str) -> list[str]:
    return ["--data-dir", str(data_dir), "--database-url", database_url]


@dataclass
class Populated:
    """What a test made on the platform before backing it up."""

    admin_password: str
    admin_token: str
    username: str
    user_token: str
    esc_id: str
    esc_token: str


def populate(platform: RunningPlatform, tmp_path: Path) -> Populated:
    """adder and a job with a secret, a user, an ESC with a token that may call both; checked to work."""
    admin_password, admin_token = platform.admin_password, platform.admin_token
    assert deploy_and_wait(platform, EXAMPLES / "adder")["status"] == "done"
    secret_job = write_job(tmp_path / "secretjob", "secretjob", SECRET_JOB)
    result = deploy_and_wait(
        platform, secret_job, secret_vars={"runtime_env": {"MY_SECRET": SECRET_VALUE}, "build_env": {}}
    )
    assert result["status"] == "done", result
    username = f"u{uuid.uuid4().hex[:8]}@example.com"
    created = platform.http.post(f"{platform.api}/users", json={"username": username, "password": PASSWORD})
    assert created.status_code == 201, created.text
    login = httpx.post(f"{platform.api}/users/login", json={"username": username, "password": PASSWORD})
    assert login.status_code == 200, login.text
    esc = platform.http.post(f"{platform.api}/escs", json={"name": "backup-esc"})
    assert esc.status_code == 201, esc.text
    esc_id, esc_token = esc.json()["id"], esc.json()["token"]
    for family in ("adder", "secretjob"):
        grant = platform.http.post(f"{platform.api}/auth/allow/esc/{esc_id}/job/{family}/scope/call_job")
        assert grant.status_code == 201, grant.text
    populated = Populated(admin_password, admin_token, username, login.json()["token"], esc_id, esc_token)
    platform.secrets.update({PASSWORD, SECRET_VALUE, populated.user_token, esc_token})
    assert until(lambda: add(platform, esc_token), 200).json() == 42
    assert until(lambda: call(platform, "secretjob", esc_token), 200).json() is True
    return populated


def call(platform: RunningPlatform, job: str, token: str, payload: dict | None = None) -> httpx.Response:
    return httpx.post(
        f"{platform.url}/pub/job/{job}/latest/api/v1/perform",
        json=payload or {},
        headers={"X-Racetrack-Auth": token},
        timeout=10,
    )


def add(platform: RunningPlatform, token: str) -> httpx.Response:
    return call(platform, "adder", token, {"a": 40, "b": 2})


def until(fn: Callable[[], httpx.Response], status: int, within: float = 120) -> httpx.Response:
    """`fn()` until it answers `status` (jobs start, caches expire), or its last answer after `within` s."""
    deadline = time.monotonic() + within
    while True:
        try:
            response = fn()
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
        else:
            if response.status_code == status or time.monotonic() > deadline:
                return response
        time.sleep(0.2)
