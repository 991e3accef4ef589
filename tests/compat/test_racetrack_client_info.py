"""`/api/v1/info` and `racetrack build-logs` as a Racetrack user meets them against `trackside up`."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.compat.test_racetrack_client import racetrack, racetrack_cli  # noqa: F401 - fixtures
from tests.support.platform import RunningPlatform, write_job

pytestmark = pytest.mark.slow


def test_info_reports_the_lifecycle_url_the_platform_listens_on(platform: RunningPlatform) -> None:
    # The test platform listens on a free port, not the default 7070 the settings name.
    assert not platform.url.endswith(":7070")
    info = platform.http.get(f"{platform.api}/info").json()
    assert info["lifecycle_url"] == f"{platform.url}/lifecycle"


def test_build_logs_without_a_version_show_a_failed_first_deploy(
    racetrack,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    # Racetrack's client wants a git remote; it uploads the directory (localhost, sample@example.com).
    remote = "git:\n  remote: https://git.example.com/none.git\n"
    workdir = write_job(tmp_path / "broken", "broken-first", "class Job:\n    def perform(self:\n", extra=remote)
    failed = racetrack("deploy", str(workdir), check=False)
    assert failed.returncode != 0
    assert "deployment error" in failed.stdout + failed.stderr  # it failed on the platform, in the build
    logs = racetrack("build-logs", "broken-first")  # no --version: `latest` of a job that never deployed
    text = logs.stdout + logs.stderr
    assert "entrypoint file 'job.py' has a syntax error at line 2" in text, text
