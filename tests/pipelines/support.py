"""Helpers for the pipeline tests: an in-process pipeline service, waiting for runs, the README pipeline."""

from __future__ import annotations

import json
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from tests.support.platform import RunningPlatform

from trackside.pipelines.conditions import ACTIVE_RUN
from trackside.pipelines.runs import get_run, run_json, steps_of
from trackside.store.database import Database

TIMEOUT = 60  # the machine these run on can be slow: never httpx's default 5 s


def http_get(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(url, timeout=TIMEOUT, **kwargs)


def http_post(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(url, timeout=TIMEOUT, **kwargs)


# The pipeline of chainr's README (docs/pipelines.md), byte for byte in meaning.
README_PIPELINE: dict[str, Any] = {
    "kind": "Pipeline",
    "jobs": {
        "first": {"image": "busybox", "run": "exit 0"},
        "second": {"image": "busybox", "run": "exit 0"},
        "success": {"dependsOn": [{"job": "first"}], "image": "busybox", "run": "exit 0"},
        "error": {
            "dependsOn": [{"job": "first", "conditions": {"failure": True}}],
            "image": "busybox",
            "run": "exit 0",
        },
    },
}
# What chainr answers for it once it has run (reference 1.2-1.4): the keys chainr has, nothing else.
README_GOLDEN_JOBS = [
    {"name": "first", "status": "SUCCESSFUL"},
    {"name": "second", "status": "SUCCESSFUL"},
    {"name": "success", "status": "SUCCESSFUL"},
    {"name": "error", "status": "SKIPPED"},
]
# Env in, an output and both output streams out, and a failure that is allowed: one step each.
ENV_AND_OUTPUTS_PIPELINE: dict[str, Any] = {
    "kind": "Pipeline",
    "params": {"n": 20},
    "jobs": {
        "count": {
            "image": "busybox",
            "run": 'echo "::output twice=$((N * 2))"; echo done >&2',
            "env": {"N": "${{ params.n }}"},
        },
        "fail": {"image": "busybox", "run": "exit 7", "dependsOn": [{"job": "count"}], "allowFailure": True},
    },
}


def crash_pipeline(executor: str) -> dict[str, Any]:
    """prepare -> wait (until /tmp/go exists in its container, then an output from prepare's) -> after."""
    return {
        "kind": "Pipeline",
        "executor": executor,
        "jobs": {
            "prepare": {"image": "busybox", "run": "echo ::output greeting=hello"},
            "wait": {
                "image": "busybox",
                "run": 'echo started; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo "::output said=$G"',
                "env": {"G": "${{ jobs.prepare.outputs.greeting }}"},
                "dependsOn": [{"job": "prepare"}],
            },
            "after": {"image": "busybox", "run": "echo after", "dependsOn": [{"job": "wait"}]},
        },
    }


OWNER = {"type": "internal", "name": "tests", "subject_id": None, "scopes": None}


def chainr_view(run: dict[str, Any]) -> dict[str, Any]:
    """The part of a Run a chainr client reads: kind, metadata.selfLink/uid, status, jobs' name/status."""
    return {
        "kind": run.get("kind"),
        "metadata": {"selfLink": run["metadata"]["selfLink"], "uid": run["metadata"]["uid"]},
        "status": run["status"],
        "jobs": [{"name": job["name"], "status": job["status"]} for job in run["jobs"]],
    }


def wait_for_run_in_store(db: Database, uid: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.session() as session:
            run = get_run(session, uid)
            if run.status not in ACTIVE_RUN:
                return run_json(run, steps_of(session, [uid])[uid], detail=True)
        time.sleep(0.02)
    raise TimeoutError(f"run {uid} still active after {timeout} s")


def wait_for_run(http: httpx.Client, url: str, uid: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = http.get(f"{url}/api/runs/{uid}").json()
        if body["status"] not in ACTIVE_RUN:
            return body
        time.sleep(0.05)
    raise TimeoutError(f"run {uid} still active after {timeout} s")


def step_status(platform: RunningPlatform, uid: str, job: str) -> str:
    run = platform.http.get(f"{platform.url}/api/runs/{uid}").json()
    return str(next(j["status"] for j in run["jobs"] if j["name"] == job))


def kill_hard(platform: RunningPlatform) -> None:
    """SIGKILL `trackside up`: nothing of it runs its shutdown (the crash the resume tests recover from)."""
    platform.process.send_signal(signal.SIGKILL)
    platform.process.wait()
    if platform._http is not None:
        platform._http.close()
        platform._http = None


def shell_quote(path: Path) -> str:
    return "'" + str(path).replace("'", "'\\''") + "'"


class Receiver:
    """A loopback HTTP server recording POSTs; answers the statuses in `script` first, then 200."""

    def __init__(self, script: list[int] | None = None) -> None:
        self.script = list(script or [])
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.script.pop(0) if receiver.script else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _, body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
