"""A replica's own directory, outside the data dir: its working directory, HOME and TMPDIR.

    {jobs_dir}/{name}/{version}/replica-{index}-{token}/
        work/   the working directory; the entries of the build's working directory appear in it as
                links, so a job opens its own files by relative path as it would in its container,
                and what it writes stays here
        home/   HOME
        tmp/    TMPDIR

`jobs_dir` is the `local_jobs_dir` setting, by default `{data_dir}-jobs` beside the data dir. A
directory belongs to one start of a replica by a deploy: restarts after a crash or a platform restart
keep it (what the job wrote survives), and it is deleted once the replica is replaced or removed.
When jobs run as users of their own, it belongs to the replica's user, mode 0700.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from trackside.files import check_segment


def default_jobs_dir(data_dir: Path) -> Path:
    data_dir = Path(os.path.abspath(data_dir))
    return data_dir.with_name(f"{data_dir.name}-jobs")


@dataclass(frozen=True)
class ReplicaDirs:
    root: Path

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def env(self) -> dict[str, str]:
        return {"HOME": str(self.home), "TMPDIR": str(self.tmp)}

    def exists(self) -> bool:
        return self.work.is_dir()


def new_replica_dirs(jobs_dir: Path, name: str, version: str, index: int) -> ReplicaDirs:
    """A fresh, empty replica directory (mode 0700) under `jobs_dir`; `fill_replica_dirs` furnishes it."""
    parent = jobs_dir / check_segment(name, "job name") / check_segment(version, "job version")
    dirs = ReplicaDirs(parent / f"replica-{index}-{secrets.token_hex(4)}")
    for attempt in range(3):
        parent.mkdir(parents=True, exist_ok=True)
        try:
            dirs.root.mkdir(mode=0o700)
            return dirs
        except FileNotFoundError:  # the parent was pruned by a removal meanwhile: make it again
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def fill_replica_dirs(dirs: ReplicaDirs, source: Path | None, owner: int | None) -> None:
    """Make work/, home/ and tmp/, link `source`'s entries into work/, and give it all to `owner`."""
    for path in (dirs.work, dirs.home, dirs.tmp):
        path.mkdir(mode=0o700)
    if source is not None and source.is_dir():
        for entry in source.iterdir():
            (dirs.work / entry.name).symlink_to(entry)
    if owner is not None:
        for path in (dirs.root, dirs.work, dirs.home, dirs.tmp):
            os.chown(path, owner, owner)


def remove_replica_dirs(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
    with contextlib.suppress(OSError):  # the job's and then its version's directory, once empty
        root.parent.rmdir()
        root.parent.parent.rmdir()
