"""Start `trackside up` as a real process for end-to-end tests, and stop it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.ports import free_port

# Running platforms by API URL, so helpers given only the URL can authenticate as its admin.
_RUNNING: dict[str, RunningPlatform] = {}


@dataclass
class RunningPlatform:
    url: str
    data_dir: Path
    database_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _admin_token: str | None = None
    _http: httpx.Client | None = None
    # Every password, token and secret value a test handled on this platform: `stop()` fails if any
    # of them shows up in the platform's log or a job's log.
    secrets: set[str] = field(default_factory=set)

    @property
    def api(self) -> str:
        return f"{self.url}/lifecycle/api/v1"

    @property
    def admin_password(self) -> str:
        """The first admin's password, from the 0600 file the platform writes on its first start."""
        password = (self.data_dir / "admin-password").read_text().strip()
        self.secrets.add(password)
        return password

    @property
    def admin_token(self) -> str:
        """A token of the first admin (staff, full access), got by logging in once."""
        if self._admin_token is None:
            credentials = {"username": "admin", "password": self.admin_password}
            response = httpx.post(f"{self.api}/users/login", json=credentials, timeout=30)
            assert response.status_code == 200, response.text
            self._admin_token = str(response.json()["token"])
            self.secrets.add(self._admin_token)
        return self._admin_token

    @property
    def auth(self) -> dict[str, str]:
        """Headers that authenticate as the first admin."""
        return {"X-Racetrack-Auth": self.admin_token}

    @property
    def http(self) -> httpx.Client:
        """An HTTP client that sends the admin's token (for the lifecycle API and the gateway alike)."""
        if self._http is None:
            self._http = httpx.Client(headers=self.auth, timeout=30)
        return self._http

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def all_logs(self) -> str:
        """The platform's own log and every job log in its data dir."""
        text = self.logs()
        for job_log in sorted(self.data_dir.glob("logs/**/*.log")):
            text += job_log.read_text(errors="replace")
        return text

    def assert_no_secret_in_logs(self) -> None:
        logs = self.all_logs()
        for secret in self.secrets:
            if secret and secret in logs:
                raise AssertionError(f"a secret starting {secret[:6]!r} is in the logs of the platform at {self.url}")

    def stop(self, timeout: float = 20, check_logs: bool = True) -> None:
        """Stop the platform; then fail if a secret it handled is in its logs (`check_logs`)."""
        if self._http is not None:
            self._http.close()
            self._http = None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if check_logs:
            self.assert_no_secret_in_logs()


def start_platform(
    data_dir: Path,
    database_url: str,
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
    timeout: float = 240,
    command_prefix: list[str] | None = None,
) -> RunningPlatform:
    """`trackside up`: every component in one process."""
    return start_trackside(["up"], data_dir, database_url, port, extra_env, timeout, command_prefix=command_prefix)


def start_trackside(
    command_args: list[str],
    data_dir: Path,
    database_url: str,
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
    timeout: float = 240,
    health_path: str | None = "/lifecycle/health",
    command_prefix: list[str] | None = None,
) -> RunningPlatform:
    """`trackside COMMAND_ARGS...` (`up`, `serve lifecycle`, ...) as a process, once it answers `health_path`.

    `command_prefix` runs it through another program (e.g. one that switches to another user).
    """
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    # Arguments may be URLs: keep the log's name one safe file name.
    log_path = data_dir.parent / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', '-'.join(command_args))}-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKSIDE_")}
    env.update(extra_env or {})
    env["TRACKSIDE_SUPERVISOR_INTERVAL"] = env.get("TRACKSIDE_SUPERVISOR_INTERVAL", "0.5")
    command = [
        *(command_prefix or []),
        sys.executable,
        "-m",
        "trackside.cli.main",
        *command_args,
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--database-url",
        database_url,
    ]
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    running = RunningPlatform(url, data_dir, database_url, process, log_path)
    name = "trackside " + " ".join(command_args)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{running.logs()}")
        try:
            # A few seconds per try: on a loaded machine a first answer can take longer than one.
            if health_path is None or httpx.get(f"{url}{health_path}", timeout=5).status_code == 200:
                _RUNNING[running.api] = running
                return running
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    running.stop(check_logs=False)
    raise RuntimeError(f"{name} did not answer within {timeout}s:\n{running.logs()}")


def wait_for_deployment(
    api: str, deployment_id: str, timeout: float = 120, headers: dict[str, str] | None = None
) -> dict:
    if headers is None:  # the platform's admin, found by its API URL
        headers = _RUNNING[api].auth if api in _RUNNING else {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = httpx.get(f"{api}/deploy/{deployment_id}", timeout=10, headers=headers).json()
        if body["status"] != "in_progress":
            return body
        time.sleep(0.1)
    raise TimeoutError(f"deployment {deployment_id} still in progress after {timeout}s")


def deploy_directory(
    platform: RunningPlatform,
    directory: Path,
    force: bool = False,
    overrides: tuple[str, ...] = (),
    secret_vars: dict | None = None,
    token: str | None = None,
) -> httpx.Response:
    """POST /deploy for a job directory, the way our CLI sends it (manifest + uploaded source).

    As the first admin unless `token` says who deploys.
    """
    from trackside.cli.build_context import pack_directory
    from trackside.manifest.load import load_manifest_dict

    body = {
        "manifest": load_manifest_dict(directory, overrides),
        "build_context": pack_directory(directory).to_base64(),
        "force": force,
        "secret_vars": secret_vars,
    }
    headers = {"X-Racetrack-Auth": token if token is not None else platform.admin_token}
    return httpx.post(f"{platform.api}/deploy", json=body, timeout=30, headers=headers)


def deploy_and_wait(platform: RunningPlatform, directory: Path, **kwargs: object) -> dict:
    response = deploy_directory(platform, directory, **kwargs)  # type: ignore[arg-type]
    assert response.status_code in (200, 201), response.text
    return wait_for_deployment(platform.api, response.json()["id"], headers=platform.auth)


def write_job(
    directory: Path,
    name: str,
    source: str,
    *,
    version: str = "0.0.1",
    entrypoint: str = "job.py",
    requirements: str | None = None,
    extra: str = "",
) -> Path:
    """Write a python3 job (job.yaml + entrypoint file) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / entrypoint).write_text(source)
    if requirements is not None:
        (directory / "requirements.txt").write_text(requirements)
    (directory / "job.yaml").write_text(
        f"name: {name}\nowner_email: sample@example.com\nversion: {version}\njobtype: python3:latest\n"
        f"jobtype_extra:\n  entrypoint_path: {entrypoint}\n{extra}"
    )
    return directory
