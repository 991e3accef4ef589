"""`trackside pipeline ...` against a real platform: run with params and live progress, exit status from
the run's, list, status, logs (followed), cancel and retry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.pipelines.support import README_PIPELINE, shell_quote, wait_for_run
from tests.support.platform import RunningPlatform
from tests.support.polling import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.store]


@pytest.fixture
def trackside(tmp_path: Path, pipeline_platform: RunningPlatform):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKSIDE_")}
    env["TRACKSIDE_CLIENT_CONFIG"] = str(tmp_path / "client")

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "trackside.cli.main",
                *args,
                *(["--remote", pipeline_platform.url] if args[0] in ("pipeline", "login") else []),
            ],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=180,
            env=env,
        )

    login = run("login", "--username", "admin", "--password-stdin", stdin=pipeline_platform.admin_password + "\n")
    assert login.returncode == 0, login.stderr
    return run


def write(path: Path, body: dict) -> Path:  # type: ignore[type-arg]
    path.write_text(json.dumps(body))
    return path


def test_run_follows_the_steps_and_exits_with_the_run_s_status(trackside, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = trackside("pipeline", "run", str(write(tmp_path / "readme.json", README_PIPELINE)))
    assert good.returncode == 0, good.stderr
    uid = good.stdout.strip()
    assert "job first SUCCESSFUL" in good.stderr and "job error SKIPPED" in good.stderr
    assert good.stderr.strip().endswith(f"run {uid} SUCCESSFUL")

    body = {
        "kind": "Pipeline",
        "params": {"code": 0},
        "jobs": {"x": {"image": "b", "run": "exit $CODE", "env": {"CODE": "${{ params.code }}"}}},
    }
    bad = trackside("pipeline", "run", str(write(tmp_path / "p.json", body)), "-p", "code=4")
    assert bad.returncode == 1
    assert "job x FAILED: exited with code 4" in bad.stderr
    unknown = trackside("pipeline", "run", str(tmp_path / "p.json"), "-p", "nope=1")
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: unknown param(s) nope")
    invalid = trackside(
        "pipeline",
        "run",
        str(
            write(
                tmp_path / "bad.json",
                {"kind": "Pipeline", "jobs": {"a": {"image": "b", "run": "x", "dependsOn": [{"job": "zz"}]}}},
            )
        ),
    )
    assert invalid.returncode == 1 and "depends on unknown job 'zz'" in invalid.stderr

    listed = trackside("pipeline", "list")
    assert listed.returncode == 0 and uid in listed.stdout and "4/4" in listed.stdout
    status = trackside("pipeline", "status", uid)
    assert f"run {uid} SUCCESSFUL" in status.stdout and "error\tSKIPPED" in status.stdout
    logs = trackside("pipeline", "logs", bad.stdout.strip(), "x")
    assert logs.returncode == 0


def test_logs_follow_cancel_and_retry(trackside, pipeline_platform: RunningPlatform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    go = tmp_path / "go"
    body = {
        "kind": "Pipeline",
        "jobs": {
            "talk": {
                "image": "b",
                "run": f"echo hello; while [ ! -e {shell_quote(go)} ]; do sleep 0.05; done; echo bye; exit 1",
            },
        },
    }
    started = trackside("pipeline", "run", "--detach", str(write(tmp_path / "talk.json", body)))
    assert started.returncode == 0
    uid = started.stdout.strip()
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trackside.cli.main",
            "pipeline",
            "logs",
            uid,
            "talk",
            "-f",
            "--remote",
            pipeline_platform.url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("TRACKSIDE_")},
            "TRACKSIDE_CLIENT_CONFIG": str(tmp_path / "client"),
        },
    )
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline().strip() == "hello"
        go.write_text("")
        out, err = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.communicate()
    assert out.split() == ["bye"], err
    assert wait_for_run(pipeline_platform.http, pipeline_platform.url, uid)["status"] == "FAILED"

    go.unlink()  # the retried step waits again, so the cancel finds it running
    retried = trackside("pipeline", "retry", uid, "--detach")
    assert retried.returncode == 0
    new_uid = retried.stdout.strip()
    assert new_uid != uid

    def talk_running() -> bool:
        run = pipeline_platform.http.get(f"{pipeline_platform.url}/api/runs/{new_uid}").json()
        return bool(run["jobs"][0]["status"] == "RUNNING")

    wait_until(talk_running, what="the retried step running")
    canceled = trackside("pipeline", "cancel", new_uid)
    assert canceled.returncode == 0 and "being canceled" in canceled.stderr
    final = wait_for_run(pipeline_platform.http, pipeline_platform.url, new_uid)
    assert final["status"] == "CANCELED" and final["metadata"]["retryOf"] == uid
    status = trackside("pipeline", "status", new_uid)
    assert "talk\tCANCELED" in status.stdout
