"""The watcher: crashed replicas come back, and jobs survive a restart of the platform."""

from __future__ import annotations

import os
import signal

from tests.infra.local.localjob import LocalHarness, fake_job_command, http_get, monitor, pid_gone
from tests.support.polling import wait_until

from trackside.domain import JobDto
from trackside.infra.local.monitor import LocalJobMonitor


def _listed(local: LocalHarness, target: object) -> JobDto:
    (job,) = monitor(target).list_jobs(local.settings)  # type: ignore[arg-type]
    return job


def test_killed_replica_is_restarted_and_listed_as_error_then_running(local: LocalHarness) -> None:
    target = local.target()
    local.artifact()
    job = local.deploy(target, replicas=2)
    monitor(target).check_job_condition(job, 1_700_000_001)
    (first, second) = local.states()

    os.kill(first.pid, signal.SIGKILL)

    expected = "replica 0: process exited with code -9 (killed by SIGKILL), restarting in"
    failing = wait_until(lambda: expected in ((j := _listed(local, target)).error or "") and j, timeout=5)
    assert failing.status == "error"
    assert failing.replica_internal_names == [f"127.0.0.1:{second.port}"]
    recovered = wait_until(lambda: (j := _listed(local, target)).status == "running" and j, timeout=10)
    restarted = local.states()[0]
    local.remember_pids()
    assert restarted.pid != first.pid and restarted.restart_count == 1 and restarted.last_exit_code == -9
    assert restarted.port == first.port  # the port was free again, so the replica kept it
    assert recovered.infrastructure_stats["restarts"] == 1
    assert http_get(f"127.0.0.1:{restarted.port}", "/ready")[0] == 200


def test_crashing_replica_is_restarted_with_growing_backoff(local: LocalHarness) -> None:
    target = local.target()
    local.artifact(command=fake_job_command("import time; time.sleep(0.2); raise SystemExit(7)"))
    local.deploy(target)

    expected = "replica 0: process exited with code 7, restarting in"
    first = wait_until(lambda: expected in ((j := _listed(local, target)).error or "") and j, timeout=5)
    assert first.status == "error"
    wait_until(lambda: local.states()[0].restart_count == 1, timeout=5)
    local.remember_pids()
    second = wait_until(lambda: "restarting in 1." in ((j := _listed(local, target)).error or "") and j, timeout=5)
    assert second.infrastructure_stats["restarts"] == 1  # second delay is 2 s: more than 1 s left


def test_close_stops_jobs_and_the_next_target_starts_them_again(local: LocalHarness) -> None:
    target = local.target()
    local.artifact()
    job = local.deploy(target, replicas=2)
    monitor(target).check_job_condition(job, 1_700_000_001)
    old_pids = [s.pid for s in local.states()]

    assert target.close is not None
    target.close()

    assert all(pid_gone(pid) for pid in old_pids)
    assert all(s.stopped_by_shutdown for s in local.states())
    again = local.target()
    running = wait_until(lambda: (j := _listed(local, again)).status == "running" and j, timeout=10)
    local.remember_pids()
    new_states = local.states()
    assert not any(s.stopped_by_shutdown for s in new_states)
    assert {s.pid for s in new_states}.isdisjoint(old_pids)
    assert running.infrastructure_stats["restarts"] == 0  # a shutdown is not a crash
    status, env = http_get(running.internal_name or "", "/env")
    assert status == 200 and env["AUTH_TOKEN"] == "family-token-value"  # secrets came back from their file


def test_new_target_adopts_replicas_that_are_still_running(local: LocalHarness) -> None:
    first_target = local.target()
    local.artifact()
    job = local.deploy(first_target, replicas=2)
    monitor(first_target).check_job_condition(job, 1_700_000_001)
    pids = [s.pid for s in local.states()]
    first_target.job_deployer.manager.release()  # type: ignore[union-attr]  # as if the platform died

    second_target = local.target()
    listed = _listed(local, second_target)
    monitor(second_target).check_job_condition(job, 1_700_000_001)

    assert listed.status == "running"
    assert listed.infrastructure_stats["pids"] == pids
    assert [s.pid for s in local.states()] == pids
    second_target.job_deployer.delete_job("adder", "1.0.0")  # type: ignore[union-attr]
    assert all(pid_gone(pid) for pid in pids)


def test_only_one_target_on_a_data_dir_restarts_replicas(local: LocalHarness) -> None:
    owner = local.target()
    observer = local.target()
    local.artifact()
    local.deploy(observer)  # deployed through the second one: the owner follows the state files
    (state,) = local.states()
    assert owner.job_deployer.manager.is_owner  # type: ignore[union-attr]
    assert not observer.job_deployer.manager.is_owner  # type: ignore[union-attr]
    wait_until(lambda: owner.job_deployer.manager.replica_count("adder", "1.0.0") == 1, timeout=5)  # type: ignore[union-attr]

    os.kill(state.pid, signal.SIGKILL)

    wait_until(lambda: local.states()[0].restart_count == 1, timeout=10)
    local.remember_pids()
    job = wait_until(lambda: (j := _listed(local, owner)).status == "running" and j, timeout=10)
    assert job.infrastructure_stats["restarts"] == 1
    assert len({s.pid for s in local.states()}) == 1


def test_one_unanswered_probe_of_a_healthy_replica_is_tolerated_two_in_a_row_are_an_error(
    local: LocalHarness,
) -> None:
    target = local.target()
    local.artifact()
    job = local.deploy(target)
    monitor(target).check_job_condition(job, 1_700_000_001)
    assert _listed(local, target).status == "running"
    (replica,) = local.states()
    os.kill(replica.pid, signal.SIGSTOP)  # alive, but answers nothing: probes time out
    try:
        assert _listed(local, target).status == "running"
        second = _listed(local, target)
        assert second.status == "error"
        assert "not answering" in (second.error or "")
    finally:
        os.kill(replica.pid, signal.SIGCONT)
    assert wait_until(lambda: _listed(local, target).status == "running", timeout=10)


def test_a_replica_that_never_answered_is_starting_while_it_boots_and_in_error_once_its_boot_time_is_up(
    local: LocalHarness,
) -> None:
    target = local.target()
    local.artifact(command=fake_job_command("import time; time.sleep(3600)"))  # runs, never answers
    local.deploy(target)
    manager = monitor(target).manager

    # As a platform that has just started meets it: a fresh monitor, which has never heard it answer.
    (booting,) = LocalJobMonitor(manager, live_timeout=3600, ready_timeout=3600).list_jobs(local.settings)
    assert (booting.status, booting.error, booting.replica_internal_names) == ("starting", None, [])

    (overdue,) = LocalJobMonitor(manager, live_timeout=0, ready_timeout=0).list_jobs(local.settings)
    assert overdue.status == "error" and "not answering" in (overdue.error or "")
