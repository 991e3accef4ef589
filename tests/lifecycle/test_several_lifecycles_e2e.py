"""Two `serve lifecycle` processes on one PostgreSQL: one is killed mid-deploy, the other settles its work.

Deployments run on both. When one lifecycle is SIGKILLed, its deployments are left in progress under
leases it no longer renews; the other lifecycle takes them over and settles them: nothing it had made
is left half-made (a first deploy's replicas, job record and build go; a forced redeploy's new
replicas go and the version keeps serving from its earlier ones), and nothing is lost (its own
deployment finishes, and the job being redeployed answers every call throughout).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from tests.infra.local.localjob import pid_gone
from tests.support.calls import Callers, generation_source
from tests.support.platform import (
    RunningPlatform,
    deploy_and_wait,
    deploy_directory,
    start_trackside,
    wait_for_deployment,
    write_job,
)
from tests.support.ports import free_port

from trackside.infra.local.layout import LocalLayout
from trackside.infra.local.state import read_state

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

NEVER_READY = """
import time


class SlowStart:
    def __init__(self):
        time.sleep(300)

    def perform(self, a=0, b=0):
        return a + b
"""


def replicas(data_dir: Path, name: str) -> dict[str, list[int]]:
    """A job's local replicas by deployment tag: their pids, from the target's state files."""
    found: dict[str, list[int]] = {}
    for job, _, _, path in LocalLayout(data_dir).state_files():
        state = read_state(path)
        if job == name and state is not None:
            found.setdefault(state.tag, []).append(state.pid)
    return found


def wait_for_phase(lifecycle: RunningPlatform, deployment_id: str, phase: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        deployment = lifecycle.http.get(f"{lifecycle.api}/deploy/{deployment_id}").json()
        assert deployment["status"] == "in_progress", deployment
        if deployment["phase"] == phase:
            return
        time.sleep(0.1)
    raise AssertionError(f"deployment {deployment_id} never reached phase {phase!r}")


def test_a_lifecycle_killed_mid_deploy_leaves_nothing_half_made_and_the_other_loses_nothing(
    tmp_path: Path, postgres_url: str
) -> None:
    data_dir = tmp_path / "data"  # shared, as replicas of one control plane share a volume
    gateway_port = free_port()
    env = {
        "TRACKSIDE_LEASE_DURATION": "3",
        "TRACKSIDE_EXTERNAL_PUB_URL": f"http://127.0.0.1:{gateway_port}/pub",
    }
    doomed = start_trackside(["serve", "lifecycle"], data_dir, postgres_url, extra_env=env)
    started = [doomed]
    try:
        survivor = start_trackside(["serve", "lifecycle"], data_dir, postgres_url, extra_env=env)
        started.append(survivor)
        gateway = start_trackside(
            ["serve", "gateway"],
            data_dir,
            postgres_url,
            port=gateway_port,
            health_path="/pub/health",
            extra_env={**env, "TRACKSIDE_LIFECYCLE_URL": f"{survivor.url}/lifecycle"},
        )
        started.append(gateway)

        kept_dir = write_job(tmp_path / "kept", "kept", generation_source("old"))
        assert deploy_and_wait(survivor, kept_dir)["status"] == "done"
        (old_tag,) = replicas(data_dir, "kept")
        with Callers(gateway.url, survivor.auth, "kept", "0.0.1", clients=4) as callers:
            # On the lifecycle about to die: a forced redeploy of `kept` and a first deploy, both stuck
            # waiting for replicas that never get ready.
            (kept_dir / "job.py").write_text(NEVER_READY)
            redeploy = deploy_directory(doomed, kept_dir, force=True).json()["id"]
            first = deploy_directory(doomed, write_job(tmp_path / "half", "halfmade", NEVER_READY)).json()["id"]
            # On the one that lives: a deploy of its own, under way when the other dies.
            own = deploy_directory(survivor, write_job(tmp_path / "own", "own", generation_source("own", 3.0))).json()[
                "id"
            ]
            for deployment_id in (redeploy, first):
                wait_for_phase(doomed, deployment_id, "initializing Job entrypoint")
            new_kept = [pid for tag, pids in replicas(data_dir, "kept").items() if tag != old_tag for pid in pids]
            halfmade = [pid for pids in replicas(data_dir, "halfmade").values() for pid in pids]
            assert new_kept and halfmade

            doomed.process.send_signal(signal.SIGKILL)
            doomed.process.wait()

            settled = {d: wait_for_deployment(survivor.api, d, timeout=60) for d in (redeploy, first, own)}
            while callers.calls() < 50:
                time.sleep(0.05)
        assert callers.failures == [], callers.failures[:10]  # `kept` answered every call throughout

        # Nothing lost: the survivor's own deployment finished, and serves.
        assert settled[own]["status"] == "done", settled[own]
        own_answer = survivor.http.post(f"{gateway.url}/pub/job/own/0.0.1/api/v1/which", json={})
        assert own_answer.json() == "own"

        # Nothing half-made: both deployments of the dead lifecycle were rolled back by the survivor.
        for deployment_id in (redeploy, first):
            assert settled[deployment_id]["status"] == "failed", settled[deployment_id]
            assert "restarted while it was in progress" in settled[deployment_id]["error"]
            logs = survivor.http.get(f"{survivor.api}/deploy/{deployment_id}").json()
            assert logs["status"] == "failed"
        kept = survivor.http.get(f"{survivor.api}/job/kept/0.0.1").json()
        assert (kept["status"], kept["image_tag"]) == ("running", old_tag)
        assert survivor.http.post(f"{gateway.url}/pub/job/kept/latest/api/v1/which", json={}).json() == "old"
        assert survivor.http.get(f"{survivor.api}/job/halfmade/0.0.1").status_code == 404
        deadline = time.monotonic() + 20
        while not all(pid_gone(pid) for pid in new_kept + halfmade) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(pid_gone(pid) for pid in new_kept + halfmade), "replicas of the dead lifecycle left running"
        assert list(replicas(data_dir, "kept")) == [old_tag] and replicas(data_dir, "halfmade") == {}
        assert not (data_dir / "builds" / "halfmade" / "0.0.1").exists() or not any(
            (data_dir / "builds" / "halfmade" / "0.0.1").iterdir()
        )
        for name in ("kept", "halfmade"):
            events = survivor.http.get(f"{survivor.api}/audit/events/job/{name}/0.0.1").json()
            assert "deployment_failed" in [event["event_type"] for event in events]

        # And the version the dead lifecycle was deploying first can be deployed again, no --force needed.
        again = deploy_and_wait(survivor, write_job(tmp_path / "again", "halfmade", generation_source("again")))
        assert again["status"] == "done", again
    finally:
        for process in reversed(started):
            process.stop()
