"""The log scan that every platform fixture runs at teardown must be able to fail."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.platform import RunningPlatform


def _stopped_platform(tmp_path: Path, platform_log: str, job_log: str) -> RunningPlatform:
    log_path = tmp_path / "up.log"
    log_path.write_text(platform_log)
    job_logs = tmp_path / "data" / "logs" / "adder" / "0.0.1"
    job_logs.mkdir(parents=True)
    (job_logs / "replica-0.log").write_text(job_log)
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return RunningPlatform("http://127.0.0.1:1", tmp_path / "data", "sqlite://", process, log_path)


def test_stop_fails_when_a_handled_secret_is_in_the_platform_log(tmp_path: Path) -> None:
    platform = _stopped_platform(tmp_path, "login admin with Hunter-22-Secret\n", "")
    platform.secrets.add("Hunter-22-Secret")
    with pytest.raises(AssertionError, match="Hunter"):
        platform.stop()


def test_stop_fails_when_a_handled_secret_is_in_a_job_log(tmp_path: Path) -> None:
    platform = _stopped_platform(tmp_path, "", "token=eyJ-job-log-token\n")
    platform.secrets.add("eyJ-job-log-token")
    with pytest.raises(AssertionError, match="eyJ-jo"):
        platform.stop()


def test_stop_passes_when_no_handled_secret_is_logged(tmp_path: Path) -> None:
    platform = _stopped_platform(tmp_path, "started\n", "ready\n")
    platform.secrets.add("Hunter-22-Secret")
    platform.stop()
