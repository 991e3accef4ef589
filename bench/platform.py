"""A real `trackside up` for the platform benchmarks, started and authenticated the way the tests do.

The helpers come from tests/support/platform.py (`start_platform`, `deploy_directory`, the admin token
read from the data dir), so the bench exercises exactly what the end-to-end tests do.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.common import REPO_ROOT, BenchError, pin_pid

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.platform import (  # noqa: E402
    RunningPlatform,
    deploy_directory,
    start_platform,
    write_job,
)

__all__ = ["RunningPlatform", "deploy_directory", "write_job", "platform", "deploy_and_wait", "replica_address"]


@contextlib.contextmanager
def platform(
    data_dir: Path, *, core: int | None = None, env: dict[str, str] | None = None, database_url: str | None = None
) -> Iterator[RunningPlatform]:
    """`trackside up` on a fresh data dir (pinned to `core` when given); stopped with its replicas after."""
    extra = {"TRACKSIDE_SUPERVISOR_INTERVAL": "2.0", "TRACKSIDE_LOG_LEVEL": "warning", **(env or {})}
    url = database_url or f"sqlite:///{data_dir / 'trackside.db'}"
    try:
        running = start_platform(data_dir, url, extra_env=extra, timeout=120)
    except RuntimeError as exc:
        raise BenchError(f"trackside up did not start: {exc}") from exc
    try:
        if core is not None:
            pin_pid(running.process.pid, core)  # replicas it starts later inherit the pinning
        yield running
    finally:
        running.stop(timeout=30)
        _stop_leftover_replicas(data_dir)


def _stop_leftover_replicas(data_dir: Path) -> None:
    """Replicas `trackside up` left running (it should stop them itself): stop them, so the bench leaks nothing."""
    from trackside.infra.local.layout import LocalLayout
    from trackside.infra.local.processes import Running, stop_processes
    from trackside.infra.local.state import read_state

    leftovers = []
    for _name, _version, _index, path in LocalLayout(data_dir).state_files():
        state = read_state(path)
        if state is not None:
            leftovers.append(Running(state.pid, state.command))
    stop_processes(leftovers, grace=5)


def deploy_and_wait(running: RunningPlatform, directory: Path, timeout: float = 300) -> dict[str, Any]:
    """Deploy a job directory and wait for the deployment to finish; fails unless it is done."""
    response = deploy_directory(running, directory)
    if response.status_code not in (200, 201):
        raise BenchError(f"POST /deploy of {directory.name} answered {response.status_code}: {response.text}")
    deployment_id = response.json()["id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = running.http.get(f"{running.api}/deploy/{deployment_id}").json()
        if body["status"] == "done":
            return dict(body)
        if body["status"] != "in_progress":
            raise BenchError(f"deploying {directory.name} failed: {body.get('error')}")
        time.sleep(0.1)
    raise BenchError(f"deploying {directory.name} did not finish within {timeout:.0f} s")


def replica_address(running: RunningPlatform, name: str, version: str) -> tuple[str, int]:
    """host, port of the job's (first) replica, from the lifecycle API."""
    job = running.http.get(f"{running.api}/job/{name}/{version}").json()
    address = (job.get("replica_internal_names") or [job.get("internal_name")])[0]
    if not address:
        raise BenchError(f"job {name} {version} has no replica address: {job}")
    host, port = address.rsplit(":", 1)
    return host, int(port)


@dataclass
class PhaseWatch:
    """Polls GET /deploy/{id} in a thread, noting when each phase was first seen and when it ended."""

    running: RunningPlatform
    deployment_id: str
    started: float
    interval: float = 0.05
    phases: list[tuple[str, float]] = field(default_factory=list)
    status: str = "in_progress"
    finished_at: float | None = None
    error: str | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        with httpx.Client(headers=self.running.auth, timeout=30) as client:
            while True:
                try:
                    body = client.get(f"{self.running.api}/deploy/{self.deployment_id}").json()
                except httpx.HTTPError:
                    time.sleep(self.interval)
                    continue
                now = time.monotonic() - self.started
                phase = body.get("phase") or ""
                if not self.phases or self.phases[-1][0] != phase:
                    self.phases.append((phase, now))
                if body["status"] != "in_progress":
                    self.status = body["status"]
                    self.finished_at = now
                    self.error = body.get("error")
                    return
                time.sleep(self.interval)

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
        if self.finished_at is None:
            raise BenchError(f"deployment {self.deployment_id} did not finish within {timeout:.0f} s")

    def durations(self) -> dict[str, float]:
        """Seconds spent in each phase, in the order seen (the last one ends when the deployment did)."""
        out: dict[str, float] = {}
        if self.phases:  # from the deploy call to the first poll that saw a phase
            out["(until first poll)"] = round(self.phases[0][1], 3)
        marks = self.phases + [("", self.finished_at or 0.0)]
        for (phase, at), (_next, until) in zip(marks, marks[1:], strict=False):
            if phase == "done":
                continue
            out[phase] = round(out.get(phase, 0.0) + until - at, 3)
        return out
