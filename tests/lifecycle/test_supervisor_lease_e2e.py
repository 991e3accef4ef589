"""Two `serve supervisor` processes on one PostgreSQL: one acts at a time, the other takes over when it dies."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest
from tests.support.calls import generation_source
from tests.support.platform import RunningPlatform, deploy_and_wait, start_trackside, write_job

from trackside.infra.local.layout import LocalLayout
from trackside.infra.local.processes import process_matches
from trackside.infra.local.state import read_state
from trackside.lifecycle import leases
from trackside.lifecycle.supervisor import LEASE
from trackside.store.database import Database

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def holder_pid(db: Database) -> int | None:
    holder = leases.holder(db, LEASE)
    return int(holder.split("|")[3]) if holder else None


def wait_for(condition: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} not within {timeout} s"
        time.sleep(0.1)


def test_two_supervisors_one_acts_at_a_time_and_the_other_takes_over_within_seconds(
    tmp_path: Path, postgres_url: str
) -> None:
    data_dir = tmp_path / "data"
    env = {"TRACKSIDE_LEASE_DURATION": "2", "TRACKSIDE_SUPERVISOR_INTERVAL": "0.3"}
    lifecycle = start_trackside(["serve", "lifecycle"], data_dir, postgres_url, extra_env=env)
    started: list[RunningPlatform] = [lifecycle]
    db = Database(postgres_url)
    replicas: list[tuple[int, list[str]]] = []
    try:
        job = deploy_and_wait(lifecycle, write_job(tmp_path / "job", "watched", generation_source("one")))
        assert job["status"] == "done", job
        states = [read_state(path) for *_, path in LocalLayout(data_dir).state_files()]
        replicas = [(state.pid, state.command) for state in states if state is not None]
        supervisors = [
            start_trackside(["serve", "supervisor"], data_dir, postgres_url, extra_env=env, health_path=None)
            for _ in range(2)
        ]
        started += supervisors
        by_pid = {s.process.pid: s for s in supervisors}

        wait_for(lambda: holder_pid(db) in by_pid, "a supervisor holding the lease")
        acting = by_pid[holder_pid(db) or 0]
        standby = next(s for s in supervisors if s is not acting)
        # For several lease periods (and many passes of both) the same one holds it.
        for _ in range(20):
            assert holder_pid(db) == acting.process.pid
            time.sleep(0.25)

        acting.process.send_signal(signal.SIGKILL)
        acting.process.wait()
        # Within seconds: its lease (2 s) runs out and the standby, trying every 0.3 s, takes it.
        wait_for(lambda: holder_pid(db) == standby.process.pid, "the standby taking over", timeout=15)

        # It does act: the job's replicas vanish from the target, and it marks the job lost.
        for *_, path in LocalLayout(data_dir).state_files():
            path.unlink()
        wait_for(
            lambda: lifecycle.http.get(f"{lifecycle.api}/job/watched/0.0.1").json()["status"] == "lost",
            "the job marked lost by the supervisor that took over",
        )
    finally:
        for process in reversed(started):
            process.stop()
        db.dispose()
        for pid, command in replicas:  # the replicas forgotten with their state files
            if process_matches(pid, command):  # never signal a recycled pid
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
