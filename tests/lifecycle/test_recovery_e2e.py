"""A platform killed in the middle of a first deploy leaves nothing half-made once it starts again."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from tests.infra.local.localjob import pid_gone
from tests.support.platform import RunningPlatform, deploy_directory, start_platform, wait_for_deployment, write_job

from trackside.infra.local.layout import LocalLayout
from trackside.infra.local.state import read_state

pytestmark = pytest.mark.slow

SLOW_START = """
import time


class SlowStart:
    def __init__(self):
        time.sleep(120)

    def perform(self):
        return "slow"
"""
FAST = """
class Fast:
    def perform(self):
        return "fast"
"""


def replica_pids_once_started(platform: RunningPlatform, name: str, deployment_id: str) -> list[int]:
    """The pids of a deploy's local replicas (from the target's state files), once it waits for them."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        deployment = platform.http.get(f"{platform.api}/deploy/{deployment_id}").json()
        assert deployment["status"] == "in_progress", deployment
        if deployment["phase"] == "initializing Job entrypoint":
            states = [
                read_state(path) for job, _, _, path in LocalLayout(platform.data_dir).state_files() if job == name
            ]
            return [state.pid for state in states if state is not None]
        time.sleep(0.1)
    raise AssertionError(f"the replicas of {name} never started")


def test_a_first_deploy_cut_off_by_a_crash_is_rolled_back_and_can_be_deployed_again(
    tmp_path: Path, database_url: str
) -> None:
    data_dir = tmp_path / "data"
    first = start_platform(data_dir, database_url)
    try:
        deployment_id = deploy_directory(first, write_job(tmp_path / "slow", "halfmade", SLOW_START)).json()["id"]
        pids = replica_pids_once_started(first, "halfmade", deployment_id)
        assert pids
    finally:
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()

    second = start_platform(data_dir, database_url)
    try:
        deployment = second.http.get(f"{second.api}/deploy/{deployment_id}").json()
        assert deployment["status"] == "failed", deployment
        assert "restarted while it was in progress" in deployment["error"]
        assert second.http.get(f"{second.api}/job/halfmade/0.0.1").status_code == 404
        deadline = time.monotonic() + 10
        while not all(pid_gone(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(pid_gone(pid) for pid in pids), f"replicas left running: {pids}"
        events = second.http.get(f"{second.api}/audit/events/job/halfmade/0.0.1").json()
        assert "deployment_failed" in [event["event_type"] for event in events]

        again = deploy_directory(second, write_job(tmp_path / "fast", "halfmade", FAST))  # no --force needed
        assert again.status_code in (200, 201), again.text
        assert wait_for_deployment(second.api, again.json()["id"])["status"] == "done"
        answer = second.http.post(f"{second.url}/pub/job/halfmade/0.0.1/api/v1/perform", json={})
        assert answer.json() == "fast"
    finally:
        second.stop()
