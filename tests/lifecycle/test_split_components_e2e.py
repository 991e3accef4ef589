"""`trackside serve lifecycle|gateway|supervisor`: the same platform as separate processes."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from tests.conftest import EXAMPLES
from tests.infra.local.localjob import pid_gone
from tests.support.platform import deploy_and_wait, start_trackside
from tests.support.ports import free_port

from trackside.infra.local.layout import LocalLayout
from trackside.infra.local.state import read_state

pytestmark = pytest.mark.slow


def test_separate_lifecycle_gateway_and_supervisor_deploy_and_serve_a_job(tmp_path: Path, database_url: str) -> None:
    gateway_port = free_port()
    data_dir = tmp_path / "data"
    lifecycle = start_trackside(
        ["serve", "lifecycle"],
        data_dir,
        database_url,
        extra_env={"TRACKSIDE_EXTERNAL_PUB_URL": f"http://127.0.0.1:{gateway_port}/pub"},
    )
    started = [lifecycle]
    try:
        gateway = start_trackside(
            ["serve", "gateway"],
            data_dir,
            database_url,
            port=gateway_port,
            health_path="/pub/health",
            extra_env={"TRACKSIDE_LIFECYCLE_URL": f"{lifecycle.url}/lifecycle"},
        )
        started.append(gateway)
        supervisor = start_trackside(["serve", "supervisor"], data_dir, database_url, health_path=None)
        started.append(supervisor)

        result = deploy_and_wait(lifecycle, EXAMPLES / "adder")
        assert result["status"] == "done", result
        assert result["job"]["pub_url"] == f"http://127.0.0.1:{gateway_port}/pub/job/adder/0.0.1"
        answer = httpx.post(
            f"{gateway.url}/pub/job/adder/latest/api/v1/perform",
            json={"a": 40, "b": 2},
            headers=lifecycle.auth,
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == 42
        refused = httpx.post(f"{gateway.url}/pub/job/adder/latest/api/v1/perform", json={"a": 1, "b": 2})
        assert refused.status_code == 401

        # The lone supervisor keeps statuses true: after a delete through the lifecycle nothing is lost.
        time.sleep(1.5)
        assert supervisor.process.poll() is None, supervisor.logs()
        job = httpx.get(f"{lifecycle.api}/job/adder/0.0.1", headers=lifecycle.auth).json()
        assert job["status"] == "running", job
        states = [read_state(path) for *_, path in LocalLayout(data_dir).state_files()]
        replica_pids = [state.pid for state in states if state is not None]
        assert replica_pids, states
    finally:
        for process in reversed(started):
            process.stop()
    # The last component to stop stops the replicas: nothing is left running once all are stopped.
    assert [pid for pid in replica_pids if not pid_gone(pid)] == []
