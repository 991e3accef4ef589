"""Confinement of the local target's jobs: the mode chosen, each replica's plan, uids, and the sandbox.

The end-to-end proof (a job prying at the platform's files through the real platform) is in
test_local_isolation_e2e.py; these pin the parts, and run a fake job under each mode this host offers.
"""

from __future__ import annotations

import logging
import os
import pwd
import stat
import tempfile
from pathlib import Path

import pytest
from tests.infra.local.localjob import LocalHarness, http_get, monitor

from trackside.config import Settings
from trackside.errors import InvalidInput
from trackside.infra.local import sandbox
from trackside.infra.local.confinement import (
    Confinement,
    Mode,
    first_closed_ancestor,
    program_paths,
    readable_by_others,
    readable_outside,
)
from trackside.infra.local.state import ReplicaState
from trackside.infra.local.uids import UidPool


def _modes_here() -> list[str]:
    modes = ["none"]
    if sandbox.landlock_abi() >= 1:
        modes.append("landlock")
    if os.geteuid() == 0:
        modes.append("users")
    return modes


def _state(home: Path, command: list[str], uid: int | None = None) -> ReplicaState:
    return ReplicaState("adder", "1.0.0", 0, 0, 1, "t1", command, cwd="", home=str(home), uid=uid)


def test_readable_paths_holding_the_data_dir_are_split_around_it(tmp_path: Path) -> None:
    for name in ("bin", "lib", "srv/data", "srv/other"):
        (tmp_path / name).mkdir(parents=True)

    readable = readable_outside([tmp_path, tmp_path / "srv/data/inside"], [tmp_path / "srv/data"])

    assert readable == [tmp_path / "bin", tmp_path / "lib", tmp_path / "srv/other"]


def test_the_first_closed_ancestor_is_the_highest_directory_others_cannot_enter() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as scratch:  # /tmp: open to all, unlike pytest's tmp_path
        root = Path(scratch)
        root.chmod(0o755)
        closed = root / "open/closed"
        (closed / "inner/deeper").mkdir(parents=True)
        closed.chmod(0o700)
        (closed / "inner").chmod(0o700)

        assert first_closed_ancestor(closed / "inner/deeper") == closed
        assert first_closed_ancestor(root / "open") is None


def test_users_plan_hides_the_data_dir_and_mounts_back_only_the_jobs_own_files(tmp_path: Path) -> None:
    data_dir, jobs_dir = tmp_path / "data", tmp_path / "data-jobs"
    confinement = Confinement(Mode.USERS, data_dir, jobs_dir, UidPool(3_000_000, 10, tmp_path / "claims"))
    build = data_dir / "builds/adder/1.0.0/t1"
    build.mkdir(parents=True)
    home = jobs_dir / "adder/1.0.0/replica-0-abcd"
    home.mkdir(parents=True)
    tmp_path.chmod(0o700)  # as pytest's own temporary directories are: others can't enter

    plan = confinement.plan(_state(home, ["/bin/true"], uid=3_000_001), build)

    assert plan is not None
    assert plan["uid"] == plan["gid"] == 3_000_001
    covers = [Path(c) for c in plan["view"]["covers"]]
    for hidden in (data_dir, jobs_dir):
        assert [c for c in covers if hidden.is_relative_to(c)], (hidden, covers)
    assert {path: writable for path, writable in plan["view"]["binds"]} == {str(build): False, str(home): True}
    assert plan["cwd"] == str(home / "work")


def test_a_build_made_under_a_private_umask_is_opened_to_other_users_to_read(tmp_path: Path) -> None:
    build = tmp_path / "build"
    (build / "pkg").mkdir(parents=True)
    (build / "pkg/module.py").write_text("x = 1")
    (build / "run").write_text("#!/bin/sh")
    (build / "pkg/module.py").chmod(0o600)
    (build / "run").chmod(0o700)
    for directory in (build / "pkg", build):
        directory.chmod(0o700)

    readable_by_others(build)

    paths = (build, build / "pkg", build / "pkg/module.py", build / "run")
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in paths}
    assert modes == {"build": 0o705, "pkg": 0o705, "module.py": 0o604, "run": 0o705}


def test_landlock_plan_grants_the_system_and_the_jobs_files_never_the_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    build = data_dir / "builds/adder/1.0.0/t1"
    build.mkdir(parents=True)
    home = tmp_path / "data-jobs/adder/1.0.0/replica-0-abcd"
    confinement = Confinement(Mode.LANDLOCK, data_dir, tmp_path / "data-jobs", read_paths=[tmp_path])

    plan = confinement.plan(_state(home, ["/bin/true"]), build)

    assert plan is not None and "uid" not in plan
    read = [Path(p) for p in plan["landlock"]["read"]]
    assert Path("/usr") in read and build in read
    assert tmp_path not in read  # an operator's extra path that holds the data dir is not granted
    assert not [p for p in read if p == data_dir or data_dir in p.parents and not p.is_relative_to(build)]
    assert [Path(p) for p in plan["landlock"]["write"]] == [home, Path("/dev")]


def test_a_job_reads_the_site_dirs_its_venvs_pth_files_add(tmp_path: Path) -> None:
    # The racetrack-compat layer lives in the shared build cache and reaches the job's venv through
    # a .pth file: without it in the job's view, `import multipart` fails inside the box.
    venv = tmp_path / "cache/venvs/v1"
    layer = tmp_path / "cache/racetrack-compat/k1"
    site = venv / "lib/python3.11/site-packages"
    for directory in (venv / "bin", site, layer):
        directory.mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    python = venv / "bin/python"
    python.symlink_to("/usr/bin/python3")
    (site / "racetrack_compat.pth").write_text(f"{layer}\n")
    (site / "other.pth").write_text(f"import os\n# a comment\nrelative/dir\n{tmp_path / 'missing'}\n")

    paths = program_paths([str(python)], {"PATH": "/usr/bin"})

    assert venv in paths and layer in paths
    assert not [p for p in paths if p.is_relative_to(tmp_path) and p not in (venv, layer)]


def test_uid_claims_are_exclusive_and_a_stale_claim_is_taken_over(tmp_path: Path) -> None:
    claims = tmp_path / "claims"
    first, second = UidPool(4_000_000, 2, claims), UidPool(4_000_000, 2, claims)
    owner_a, owner_b = tmp_path / "a", tmp_path / "b"
    owner_a.mkdir()
    owner_b.mkdir()

    uids = {first.claim(owner_a), second.claim(owner_b)}

    assert uids == {4_000_000, 4_000_001}
    with pytest.raises(Exception, match="no free uid left"):
        first.claim(tmp_path / "c")
    owner_a.rmdir()  # its platform's data was deleted without removing the job
    third = tmp_path / "c"
    third.mkdir()
    assert first.claim(third) in uids
    assert oct(claims.stat().st_mode & 0o777) == "0o700"


def test_uids_with_an_account_are_never_handed_out(tmp_path: Path) -> None:
    try:
        pwd.getpwuid(65_534)
    except KeyError:
        pytest.skip("no account 65534 (nobody) on this host")
    pool = UidPool(65_534, 2, tmp_path / "claims")
    owner = tmp_path / "owner"
    owner.mkdir()

    assert pool.claim(owner) == 65_535


def test_without_confinement_the_platform_says_so_loudly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(data_dir=tmp_path / "data", local_confinement="none")

    confinement = Confinement.from_settings(settings)
    with caplog.at_level(logging.WARNING):
        confinement.announce()

    assert confinement.mode is Mode.NONE
    assert "NO CONFINEMENT OF JOBS" in caplog.text and str(tmp_path / "data") in caplog.text


def test_a_jobs_dir_inside_the_data_dir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="must be outside the data dir"):
        Confinement.from_settings(Settings(data_dir=tmp_path, local_jobs_dir=tmp_path / "jobs"))


@pytest.mark.parametrize("mode", _modes_here())
def test_job_runs_outside_the_data_dir_in_every_mode_and_is_kept_from_it_when_confined(
    mode: str, local: LocalHarness
) -> None:
    local.settings.local_confinement = mode  # type: ignore[assignment]
    target = local.target()
    local.artifact()
    (local.settings.data_dir / "auth.key").write_text("the platform's key")
    job = local.deploy(target)
    monitor(target).check_job_condition(job, 1_700_000_001)

    status, env = http_get(job.internal_name or "", "/env")
    read_status, read = http_get(job.internal_name or "", "/read" + str(local.settings.data_dir / "auth.key"))
    write_status, written = http_get(job.internal_name or "", "/write/note.txt")

    assert status == 200
    data_dir = local.settings.data_dir.resolve()
    for variable in ("HOME", "TMPDIR"):
        assert not Path(env[variable]).resolve().is_relative_to(data_dir)
    assert write_status == 200 and not Path(written["path"]).resolve().is_relative_to(data_dir)
    if mode == "none":
        assert read_status == 200  # nothing keeps it out: the reason the other modes exist
    else:
        assert read_status == 403, read
        (state,) = local.states()
        assert (state.uid is not None) == (mode == "users")
        assert http_get(job.internal_name or "", "/whoami")[1]["uid"] == (state.uid if mode == "users" else os.getuid())
