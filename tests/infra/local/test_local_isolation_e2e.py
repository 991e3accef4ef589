"""A job on the local target can't reach the platform's secrets, through the real platform.

A deployed job tries to read the data dir's keys, admin password and database, to list the data dir,
and to read the platform's environment (its own, and every /proc/*/environ); each attempt must be
refused, while the job still answers calls, writes in its own working directory and logs. Run twice:
with the platform as root (jobs as users of their own) and as an unprivileged user (Landlock).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import stat
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.platform import RunningPlatform, deploy_and_wait, start_platform, write_job

from trackside.infra.local import sandbox
from trackside.infra.local.confinement import SANDBOX_SCRIPT, private_view, program_paths

pytestmark = pytest.mark.slow

SECRET_FILES = ("auth.key", "secrets.key", "admin-password", "trackside.db")

# Every attempt is recorded as "refused: <error>" or "allowed: <what it got>".
PRYING_JOB = """
import os


def attempt(report, what, action):
    try:
        report[what] = "allowed: " + repr(action())[:200]
    except OSError as exc:
        report[what] = f"refused: {type(exc).__name__}: {exc.strerror}"


class Job:
    def perform(self, data_dir: str, marker: str) -> dict:
        report = {}
        for name in ("auth.key", "secrets.key", "admin-password", "trackside.db"):
            attempt(report, name, lambda path=os.path.join(data_dir, name): open(path, "rb").read(32))
        attempt(report, "listing the data dir", lambda: os.listdir(data_dir))
        parent = os.getppid()
        attempt(report, "the platform's environ", lambda: open(f"/proc/{parent}/environ", "rb").read(64))
        through_root = f"/proc/{parent}/root{data_dir}"
        attempt(report, "the data dir through the platform's root", lambda: os.listdir(through_root))
        holding = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/environ", "rb") as environ:
                    if marker.encode() in environ.read():
                        holding.append(pid)
            except OSError:
                pass
        with open("written-by-the-job.txt", "w") as out:
            out.write("mine")
        with open("written-by-the-job.txt") as back:
            written = back.read()
        print(f"prying job ran in {os.getcwd()}", flush=True)
        return {
            "attempts": report,
            "environments holding the marker": holding,
            "own environment": sorted(os.environ),
            "cwd": os.getcwd(),
            "home": os.environ.get("HOME", ""),
            "written back": written,
        }
"""

# What a job may see of its environment: the job contract's variables and a few basics.
CONTRACT_VARS = {
    "JOB_NAME",
    "JOB_VERSION",
    "PUB_URL",
    "AUTH_TOKEN",
    "JOB_DEPLOYMENT_TIMESTAMP",
    "REQUEST_TRACING_HEADER",
    "JOB_MANIFEST_YAML",
    "PORT",
    "JOB_HOST",
    "JOB_TYPE_VERSION",
    "GIT_VERSION",
    "PYTHONPATH",
    "PYTHONUNBUFFERED",
}
BASIC_VARS = {"PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "HOME", "TMPDIR"}


def _platform_as_user(uid: int) -> list[str]:
    """A command prefix that starts the platform as `uid`, seeing its interpreter even under /root."""
    view = private_view(program_paths([sys.executable], dict(os.environ)), [], [])
    spec = {"uid": uid, "gid": uid, "view": view}
    return [sys.executable, "-I", "-S", str(SANDBOX_SCRIPT), json.dumps(spec), "--"]


@pytest.fixture(params=["root", "unprivileged"])
def platform_with_marker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[RunningPlatform, str, str]]:
    """A platform whose environment holds a unique marker; yields (platform, marker, expected mode)."""
    marker = f"platform-only-{uuid.uuid4().hex}"
    env = {"PLATFORM_ONLY_MARKER": marker}
    prefix: list[str] = []
    base = tmp_path
    if request.param == "root":
        if os.geteuid() != 0:
            pytest.skip("the platform does not run as root here (tests run unprivileged)")
        mode = "users"
    else:
        if sandbox.landlock_abi() < 1:
            pytest.skip("this kernel offers no Landlock, the confinement of an unprivileged platform")
        mode = "landlock"
        if os.geteuid() == 0:
            # Run the platform as an unprivileged user of its own, in a directory it owns.
            uid = random.randrange(4_200_000, 4_300_000)
            base = Path(tempfile.mkdtemp(prefix="trackside-unprivileged-"))
            request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
            (base / "data").mkdir()
            for path in (base, base / "data"):
                os.chown(path, uid, uid)
            prefix = _platform_as_user(uid)
            env.update(HOME=str(base), UV_CACHE_DIR=str(base / "uv-cache"))
    data_dir = base / "data"
    running = start_platform(
        data_dir,
        f"sqlite:///{data_dir / 'trackside.db'}",
        extra_env=env,
        timeout=180,  # a loaded machine may take long to start it
        command_prefix=prefix or None,
    )
    try:
        yield running, marker, mode
    finally:
        running.stop()


def test_a_job_cannot_read_the_platforms_secrets_database_or_environment_and_still_works(
    platform_with_marker: tuple[RunningPlatform, str, str], tmp_path: Path
) -> None:
    platform, marker, mode = platform_with_marker
    job_dir = write_job(tmp_path / "prying", "prying", PRYING_JOB)
    assert deploy_and_wait(platform, job_dir)["status"] == "done"
    data_dir = str(platform.data_dir.resolve())
    for name in SECRET_FILES:  # there to be read, were it not for the confinement; and private anyway
        assert stat.S_IMODE((platform.data_dir / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(platform.data_dir.stat().st_mode) == 0o700

    response = platform.http.post(
        f"{platform.url}/pub/job/prying/latest/api/v1/perform", json={"data_dir": data_dir, "marker": marker}
    )

    assert response.status_code == 200, response.text
    report = response.json()
    allowed = {what: result for what, result in report["attempts"].items() if not result.startswith("refused")}
    assert allowed == {}
    assert set(report["attempts"]) == {
        *SECRET_FILES,
        "listing the data dir",
        "the platform's environ",
        "the data dir through the platform's root",
    }
    assert report["environments holding the marker"] == []
    assert set(report["own environment"]) <= CONTRACT_VARS | BASIC_VARS
    assert report["written back"] == "mine"
    for directory in (report["cwd"], report["home"]):
        assert not Path(directory).is_relative_to(data_dir)
    logs = platform.http.get(f"{platform.api}/job/prying/latest/logs", params={"tail": 50}).json()["logs"]
    assert f"prying job ran in {report['cwd']}" in logs
    expected = {
        "users": "local target: jobs run as unprivileged users of their own",
        "landlock": "local target: jobs are confined by Landlock",
    }[mode]
    assert expected in platform.logs()
