"""SIGKILL the platform in the middle of a run and start it again: the run resumes where it was.

chainr's recycler re-ran a dead worker's runs from scratch and left its Kubernetes Jobs behind (reference
1.3). Here each step appends to a file every time it starts, so the tests see exactly what ran: the
step that had succeeded before the crash never runs again, the steps running during the crash are not
started twice (a local process that ended while the platform was down has its exit code and outputs
recorded from its files; a container that kept running is watched again to its end), and the steps
after them run once. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.pipelines.conftest import LOCAL_ENV
from tests.pipelines.support import crash_pipeline, kill_hard, shell_quote, step_status, wait_for_run
from tests.support.platform import start_platform
from tests.support.polling import wait_until
from tests.support.services import require_docker

pytestmark = [pytest.mark.slow, pytest.mark.store]

DATABASES = ["database_url", "postgres_url"]


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("database", DATABASES)
def test_a_killed_platform_resumes_local_steps_without_running_any_twice(
    tmp_path: Path, request: pytest.FixtureRequest, database: str
) -> None:
    url: str = request.getfixturevalue(database)
    work = tmp_path / "work"
    work.mkdir()
    ran, go, pid = (shell_quote(work / name) for name in ("ran", "go", "pid"))
    pipeline: dict[str, Any] = {
        "kind": "Pipeline",
        "jobs": {
            "a": {"image": "b", "run": f"echo a >> {ran}; echo ::output x=1"},
            "b": {
                "image": "b",
                "run": (
                    f"echo b-start >> {ran}; echo $$ > {pid}; while [ ! -e {go} ]; do sleep 0.05; done; "
                    f"echo b-end >> {ran}; echo ::output y=$X$X"
                ),
                "env": {"X": "${{ jobs.a.outputs.x }}"},
                "dependsOn": [{"job": "a"}],
            },
            "c": {"image": "b", "run": f"echo c >> {ran}", "dependsOn": [{"job": "b"}]},
        },
    }
    first = start_platform(tmp_path / "data", url, extra_env=LOCAL_ENV, timeout=180)
    try:
        uid = first.http.post(f"{first.url}/api/runs", json=pipeline).json()["metadata"]["uid"]
        wait_until(lambda: (work / "pid").exists() and (work / "pid").read_text().strip(), what="step b running")
        assert step_status(first, uid, "a") == "SUCCESSFUL"
        kill_hard(first)
    finally:
        first.stop()
    step_pid = int((work / "pid").read_text())
    assert pid_alive(step_pid)  # the step outlives the platform
    (work / "go").write_text("")  # ... and ends while the platform is down
    wait_until(lambda: not pid_alive(step_pid), what="step b ends")

    second = start_platform(tmp_path / "data", url, extra_env=LOCAL_ENV, timeout=180)
    try:
        run = wait_for_run(second.http, second.url, uid, timeout=60)
        assert run["status"] == "SUCCESSFUL", run
        jobs = {job["name"]: job for job in run["jobs"]}
        assert jobs["b"]["outputs"] == {"y": "11"} and jobs["b"]["attempt"] == 1
        assert [a["status"] for a in jobs["b"]["attempts"]] == ["SUCCESSFUL"]
        assert (work / "ran").read_text().split() == ["a", "b-start", "b-end", "c"]
        log = second.http.get(f"{second.url}/api/runs/{uid}/jobs/b/logs").text
        assert "::output y=11" in log
    finally:
        second.stop()


@pytest.mark.docker
@pytest.mark.parametrize("database", DATABASES)
def test_a_killed_platform_reattaches_to_docker_steps_that_kept_running(
    tmp_path: Path, request: pytest.FixtureRequest, database: str
) -> None:
    require_docker()
    url: str = request.getfixturevalue(database)
    pipeline = crash_pipeline("docker")
    first = start_platform(tmp_path / "data", url, extra_env=LOCAL_ENV, timeout=180)
    container = ""
    try:
        uid = first.http.post(f"{first.url}/api/runs", json=pipeline).json()["metadata"]["uid"]
        container = f"ts-{uid[:8]}-wait-1"
        wait_until(lambda: step_status(first, uid, "wait") == "RUNNING", what="step wait running")
        wait_until(lambda: _running(container), what="the wait container running")
        kill_hard(first)
    finally:
        first.stop()
    try:
        assert _running(container)  # the container outlives the platform
        second = start_platform(tmp_path / "data", url, extra_env=LOCAL_ENV, timeout=180)
        try:
            wait_until(lambda: "started" in second.http.get(f"{second.url}/api/runs/{uid}/jobs/wait/logs").text)
            # No check: the step may end (and its container stop) before `docker exec` itself returns.
            subprocess.run(["docker", "exec", container, "touch", "/tmp/go"], capture_output=True)
            run = wait_for_run(second.http, second.url, uid, timeout=120)
            assert run["status"] == "SUCCESSFUL", run
            jobs = {job["name"]: job for job in run["jobs"]}
            assert jobs["wait"]["attempt"] == 1 and jobs["wait"]["outputs"] == {"said": "hello"}
            assert [job["attempt"] for job in run["jobs"]] == [1, 1, 1]
            # every step container is removed once recorded: none orphaned, none doubled
            wait_until(lambda: _containers_of(uid) == [], what="the run's containers removed")
        finally:
            second.stop()
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)


def _containers_of(uid: str) -> list[str]:
    return subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label=trackside.pipeline.run={uid}", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()


def _running(container: str) -> bool:
    result = subprocess.run(
        ["docker", "inspect", "--format", "{{.State.Running}}", container], capture_output=True, text=True
    )
    return result.stdout.strip() == "true"
