"""Deploying jobs as local processes: environment, replicas, readiness checks, replacement, deletion."""

from __future__ import annotations

import os
import time

import pytest
from tests.infra.local.localjob import (
    CRASHING_JOB,
    LocalHarness,
    deployer,
    fake_job_command,
    http_get,
    monitor,
    pid_gone,
)
from tests.support.polling import wait_until

from trackside.errors import DeployFailed, InvalidInput, NotFound


def test_deployed_job_answers_with_its_env_and_without_platform_settings(
    local: LocalHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKSIDE_LOG_LEVEL", "debug")
    monkeypatch.setenv("SOME_OPERATOR_CREDENTIAL", "do-not-leak")
    target = local.target()
    local.artifact(env={"VENV_MARKER": "from-artifact"})
    job = local.deploy(target, runtime_env={"GREETING": "hello"}, secrets={"DB_PASSWORD": "s3cret"})
    alive_calls: list[bool] = []

    monitor(target).check_job_condition(job, 1_700_000_001, on_job_alive=lambda: alive_calls.append(True))

    assert alive_calls == [True]
    assert job.status == "starting" and job.infrastructure_target == "local" and job.image_tag == "t1"
    assert job.job_type_version == "fake:1"
    assert job.replica_internal_names == [job.internal_name]
    status, env = http_get(job.internal_name or "", "/env")
    assert status == 200
    assert env["JOB_NAME"] == "adder" and env["JOB_VERSION"] == "1.0.0"
    assert env["PORT"] == job.internal_name.split(":")[1]  # type: ignore[union-attr]
    assert env["JOB_HOST"] == "127.0.0.1"
    assert env["GREETING"] == "hello" and env["VENV_MARKER"] == "from-artifact"
    assert env["DB_PASSWORD"] == "s3cret" and env["AUTH_TOKEN"] == "family-token-value"
    assert not [key for key in env if key.startswith("TRACKSIDE_")]
    assert "SOME_OPERATOR_CREDENTIAL" not in env


def test_state_file_records_the_replica_but_no_secret_values(local: LocalHarness) -> None:
    target = local.target()
    local.artifact()
    job = local.deploy(target, secrets={"DB_PASSWORD": "s3cret"})

    (state,) = local.states()
    raw = local.layout.state_file("adder", "1.0.0", 0).read_text()
    assert f"127.0.0.1:{state.port}" == job.internal_name
    assert state.tag == "t1" and state.deployment_timestamp == 1_700_000_001 and state.restart_count == 0
    assert state.secret_env_keys == ["AUTH_TOKEN", "DB_PASSWORD"]
    assert "s3cret" not in raw and "family-token-value" not in raw


def test_replicas_run_on_different_ports_and_are_listed_running(local: LocalHarness) -> None:
    target = local.target()
    local.artifact()
    job = local.deploy(target, replicas=2)
    monitor(target).check_job_condition(job, 1_700_000_001)

    assert len(set(job.replica_internal_names)) == 2
    for address in job.replica_internal_names:
        assert http_get(address, "/ready")[0] == 200
    (listed,) = monitor(target).list_jobs(local.settings)
    assert listed.status == "running", listed.error
    assert sorted(listed.replica_internal_names) == sorted(job.replica_internal_names)
    assert listed.infrastructure_stats["replicas"] == 2
    assert listed.infrastructure_stats["restarts"] == 0
    assert listed.last_call_time == 1_700_000_000
    assert listed.image_tag == "t1"


def test_redeploy_starts_new_replicas_and_stops_the_old_ones(local: LocalHarness) -> None:
    target = local.target()
    local.artifact(tag="t1")
    first = local.deploy(target, tag="t1", replicas=2, timestamp=1)
    old_pids = [s.pid for s in local.states()]
    local.artifact(tag="t2")

    second = local.deploy(target, tag="t2", replicas=1, timestamp=2)
    monitor(target).check_job_condition(second, 2)

    assert second.image_tag == "t2"
    assert len(local.states()) == 1  # the state of the dropped second replica is gone
    wait_until(lambda: all(pid_gone(pid) for pid in old_pids), timeout=5)
    assert http_get(second.internal_name or "", "/live")[1]["deployment_timestamp"] == 2
    assert set(first.replica_internal_names).isdisjoint(second.replica_internal_names)


def test_process_exiting_at_once_fails_the_check_with_its_output(local: LocalHarness) -> None:
    target = local.target()
    local.artifact(command=fake_job_command(CRASHING_JOB))
    job = local.deploy(target)
    # Deadlines far beyond the test's own timeout: only noticing the exit can end the check in time.
    checker = monitor(target)
    checker.live_timeout = checker.ready_timeout = 3600

    with pytest.raises(DeployFailed) as failure:
        checker.check_job_condition(job, 1_700_000_001)

    assert "job process exited with code 3" in failure.value.message
    assert "boom: cannot connect to the database" in failure.value.message


def test_live_never_matching_the_deployment_timestamp_times_out(local: LocalHarness) -> None:
    local.settings.job_live_timeout = 0.5
    target = local.target()
    local.artifact(env={"FAKE_MODE": "wrong-timestamp"})
    job = local.deploy(target, timestamp=42)

    def answers_live() -> bool:
        try:
            return http_get(job.internal_name or "", "/live")[0] == 200
        except OSError:  # not listening yet
            return False

    # Only once it answers (with its wrong timestamp) is the short deadline about the timestamp.
    wait_until(answers_live, what="the fake job answering /live")
    with pytest.raises(DeployFailed) as failure:
        monitor(target).check_job_condition(job, 42)

    assert "did not become live within 0.5s" in failure.value.message
    assert "deployment_timestamp 1, expected 42" in failure.value.message
    assert "fake job starting on port" in failure.value.message  # recent logs attached


def test_live_answering_500_fails_at_once_with_the_jobs_error(local: LocalHarness) -> None:
    target = local.target()
    local.artifact(env={"FAKE_MODE": "live-error"})
    job = local.deploy(target)

    with pytest.raises(DeployFailed) as failure:
        monitor(target).check_job_condition(job, 1_700_000_001)

    assert "No module named 'nope'" in failure.value.message


def test_never_ready_job_times_out_in_the_ready_phase(local: LocalHarness) -> None:
    local.settings.job_ready_timeout = 0.4
    target = local.target()
    local.artifact(env={"FAKE_MODE": "never-ready"})
    job = local.deploy(target)
    alive: list[bool] = []

    with pytest.raises(DeployFailed) as failure:
        monitor(target).check_job_condition(job, 0, on_job_alive=lambda: alive.append(True), logs_on_error=False)

    assert alive == [True]
    assert failure.value.message.startswith("job did not become ready within 0.4s")


def test_delete_job_stops_every_process_and_forgets_the_job(local: LocalHarness) -> None:
    target = local.target()
    local.artifact()
    job = local.deploy(target, replicas=2, secrets={"DB_PASSWORD": "s3cret"})
    monitor(target).check_job_condition(job, 1_700_000_001)
    pids = [s.pid for s in local.states()]
    assert deployer(target).job_exists("adder", "1.0.0")

    deployer(target).delete_job("adder", "1.0.0")

    assert all(pid_gone(pid) for pid in pids)
    assert not deployer(target).job_exists("adder", "1.0.0")
    assert local.states() == []
    assert not local.secrets.runtime_secrets_file("adder", "1.0.0").exists()
    assert local.layout.log_file("adder", "1.0.0", 0).exists()  # logs are kept
    assert monitor(target).list_jobs(local.settings) == []
    time.sleep(0.3)  # the watcher must not bring it back
    assert all(pid_gone(pid) for pid in pids) and local.states() == []


def test_deploying_an_unbuilt_tag_says_which_build_is_missing(local: LocalHarness) -> None:
    target = local.target()
    with pytest.raises(NotFound, match="adder 1.0.0 tagged nope"):
        local.deploy(target, tag="nope")


def test_a_command_that_cannot_start_fails_the_deploy_with_the_reason(local: LocalHarness) -> None:
    target = local.target()
    local.artifact(command=["/nonexistent/python", "-c", "pass"])
    with pytest.raises(DeployFailed, match="cannot start job adder 1.0.0.*nonexistent"):
        local.deploy(target)
    assert not deployer(target).job_exists("adder", "1.0.0")


def test_job_names_that_would_escape_the_data_dir_are_refused(local: LocalHarness) -> None:
    target = local.target()
    with pytest.raises(InvalidInput, match="job version '../x'"):
        deployer(target).job_exists("adder", "../x")


def test_secrets_round_trip_in_a_file_only_the_owner_can_read(local: LocalHarness) -> None:
    from trackside.domain import JobSecrets

    target = local.target()
    secrets = JobSecrets(
        git_credentials={"username": "u", "password": "p"}, secret_runtime_env={"DB_PASSWORD": "s3cret"}
    )
    deployer(target).save_job_secrets("adder", "1.0.0", secrets)

    path = local.secrets.secrets_file("adder", "1.0.0")
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert "s3cret" not in path.read_text()  # encrypted at rest (issue 3); the round trip below still holds
    assert deployer(target).get_job_secrets("adder", "1.0.0") == secrets
    with pytest.raises(NotFound, match="no secrets saved for job adder 2.0.0"):
        deployer(target).get_job_secrets("adder", "2.0.0")
