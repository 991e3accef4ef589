"""Helpers for the local target's tests: a tiny job process, deploy helpers, cleanup of every process.

The job used here is a test fake job process (a stdlib http.server script run with the test's own
Python), not a fake of any part of Trackside: it lets these tests exercise real processes, ports,
files and probes without building a virtualenv.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import urllib.request
from pathlib import Path
from typing import Any

from trackside.build.artifacts import ArtifactStore, LocalArtifact
from trackside.config import Settings
from trackside.domain import JobDto, JobFamilyDto
from trackside.infra.base import InfrastructureTarget
from trackside.infra.local import build_local_target
from trackside.infra.local.deployer import LocalJobDeployer
from trackside.infra.local.layout import LocalLayout
from trackside.infra.local.monitor import LocalJobMonitor
from trackside.infra.local.processes import process_matches
from trackside.infra.local.state import read_state
from trackside.infra.secrets import SecretFileStore
from trackside.manifest.model import Manifest

# The fake job: /live (with JOB_DEPLOYMENT_TIMESTAMP), /ready, /env (its environment), /metrics.
# /whoami (its uid), /read/ABSOLUTE/PATH (403 when refused), /write/NAME (a file in its working dir).
# FAKE_MODE changes its behaviour: wrong-timestamp, live-error, never-ready, chatty.
FAKE_JOB = r"""
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODE = os.environ.get("FAKE_MODE", "")

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        ts = int(os.environ.get("JOB_DEPLOYMENT_TIMESTAMP") or 0)
        if self.path == "/live":
            if MODE == "live-error":
                return self.send(500, {"live": False, "error": "ModuleNotFoundError: No module named 'nope'",
                                       "deployment_timestamp": ts})
            return self.send(200, {"live": True, "deployment_timestamp": 1 if MODE == "wrong-timestamp" else ts})
        if self.path == "/ready":
            return self.send(500 if MODE == "never-ready" else 200, {"ready": MODE != "never-ready"})
        if self.path == "/env":
            print("serving /env", flush=True)
            return self.send(200, dict(os.environ))
        if self.path == "/whoami":
            return self.send(200, {"uid": os.getuid()})
        if self.path.startswith("/read/"):
            try:
                with open(self.path[len("/read"):], "rb") as f:
                    return self.send(200, {"content": f.read(64).decode(errors="replace")})
            except OSError as exc:
                return self.send(403, {"error": str(exc)})
        if self.path.startswith("/write/"):
            path = os.path.abspath(self.path[len("/write/"):])
            with open(path, "w") as f:
                f.write("written by the job")
            return self.send(200, {"path": path})
        if self.path == "/metrics":
            body = b"requests_done 1\nlast_call_timestamp 1700000000.0\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send(404, {"error": "not found"})

    def send(self, status, data):
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

print("fake job starting on port", os.environ["PORT"], flush=True)
if MODE == "chatty":
    for i in range(400):
        print(f"chatty line {i:04d} " + "x" * 40)
    sys.stdout.flush()
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""

CRASHING_JOB = "import sys; print('starting up'); print('boom: cannot connect to the database'); sys.exit(3)"


def fake_job_command(script: str = FAKE_JOB) -> list[str]:
    return [sys.executable, "-c", script]


def http_get(address: str, path: str, timeout: float = 2.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://{address}{path}", timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] in ("Z", "X")


class LocalHarness:
    """Creates local targets on one data dir and deploys jobs to them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = ArtifactStore(settings.data_dir)
        self.layout = LocalLayout(settings.data_dir)
        self.secrets = SecretFileStore(self.layout.secrets_root, self.layout.data_dir, "local")
        self.targets: list[InfrastructureTarget] = []
        self.seen_pids: dict[int, list[str]] = {}

    def target(self, **options: Any) -> InfrastructureTarget:
        options.setdefault("tick", 0.05)
        options.setdefault("reconcile_interval", 0.2)
        options.setdefault("stop_grace", 2.0)
        target = build_local_target(self.settings, **options)
        self.targets.append(target)
        return target

    def artifact(
        self,
        name: str = "adder",
        version: str = "1.0.0",
        tag: str = "t1",
        command: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> str:
        artifact = LocalArtifact(
            command=command or fake_job_command(),
            cwd=str(self.settings.data_dir),
            env=env or {},
            job_type_version="fake:1",
        )
        self.store.save(name, version, tag, artifact)
        return tag

    def deploy(
        self,
        target: InfrastructureTarget,
        name: str = "adder",
        version: str = "1.0.0",
        tag: str = "t1",
        replicas: int = 1,
        timestamp: int = 1_700_000_001,
        runtime_env: dict[str, str] | None = None,
        secrets: dict[str, str] | None = None,
    ) -> JobDto:
        manifest = Manifest(
            name=name, owner_email="owner@example.com", version=version, replicas=replicas, jobtype="python3:latest"
        )
        env = {
            "JOB_NAME": name,
            "JOB_VERSION": version,
            "PUB_URL": "http://127.0.0.1:7070/pub",
            "AUTH_TOKEN": "family-token-value",
            "JOB_DEPLOYMENT_TIMESTAMP": str(timestamp),
            **(runtime_env or {}),
        }
        job = deployer(target).deploy_job(
            manifest,
            self.settings,
            None,  # type: ignore[arg-type]  # the local target needs no plugin engine
            tag,
            env,
            JobFamilyDto(name=name),
            runtime_secret_vars=secrets,
        )
        self.remember_pids()
        return job

    def states(self, name: str = "adder", version: str = "1.0.0") -> list[Any]:
        directory = self.layout.job_state_dir(name, version)
        paths = sorted(directory.glob("replica-*.json")) if directory.is_dir() else []
        return [read_state(path) for path in paths]

    def remember_pids(self) -> None:
        for _, _, _, path in self.layout.state_files():
            state = read_state(path)
            if state is not None and state.pid:
                self.seen_pids[state.pid] = state.command

    def cleanup(self) -> None:
        self.remember_pids()
        for target in self.targets:
            if target.close is not None:
                with contextlib.suppress(Exception):  # keep cleaning up
                    target.close()
        self.remember_pids()
        for pid, command in self.seen_pids.items():
            if process_matches(pid, command):  # never signal a recycled pid
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)


def deployer(target: InfrastructureTarget) -> LocalJobDeployer:
    assert isinstance(target.job_deployer, LocalJobDeployer)
    return target.job_deployer


def monitor(target: InfrastructureTarget) -> LocalJobMonitor:
    assert isinstance(target.job_monitor, LocalJobMonitor)
    return target.job_monitor
