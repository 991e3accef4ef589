"""User ids for replicas, when the platform runs as root: one unprivileged uid (and gid) per replica.

The ids come from a dedicated range (settings `local_job_first_uid` and `local_job_uid_count`) with no
account behind them. Several platforms may run on one host, so a uid is claimed machine-wide: a claim
is a file named after the uid in the claims directory (root's alone), created exclusively and holding
the replica directory of its owner; allocation is serialized by an `flock` on that directory's lock
file. A claim whose replica directory is gone, and whose uid runs no process, is stale (its platform's
data was deleted without removing its jobs) and is taken over. Uids with an account in the host's user
or group database are never used.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import json
import os
import pwd
import random
from collections.abc import Iterator
from pathlib import Path

from trackside.errors import DeployFailed


def uid_runs_processes(uid: int) -> bool:
    """True when any process on the host runs with real or effective user id `uid`."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return False
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid == uid:
                return True
        except OSError:
            continue
    return False


def has_account(uid: int) -> bool:
    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
        except KeyError:
            continue
        return True
    return False


class UidPool:
    def __init__(self, first: int, count: int, claims_dir: Path) -> None:
        if first < 1000 or count < 1:
            raise ValueError(f"job uid range {first}+{count}: it must start at 1000 or above and hold one uid or more")
        self.first = first
        self.count = count
        self.claims_dir = claims_dir

    def describe(self) -> str:
        return f"{self.first}-{self.first + self.count - 1}"

    def ready(self) -> None:
        """Create the claims directory (mode 0700); raises OSError when that is not possible."""
        self.claims_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.claims_dir, 0o700)

    def claim(self, owner: Path) -> int:
        """A uid of the range claimed for the replica directory `owner` (which may not exist yet)."""
        with self._locked():
            start = random.randrange(self.count)  # noqa: S311 (spreads claims; not a secret)
            for step in range(self.count):
                uid = self.first + (start + step) % self.count
                if self._try_claim(uid, owner):
                    return uid
        raise DeployFailed(
            f"no free uid left for a job replica in {self.describe()} "
            "(settings local_job_first_uid and local_job_uid_count)"
        )

    def release(self, uid: int, owner: Path) -> None:
        """Give `uid` back, if it is still claimed by `owner`."""
        with self._locked():
            if self._owner_of(uid) == str(owner):
                with contextlib.suppress(FileNotFoundError):
                    (self.claims_dir / str(uid)).unlink()

    def _try_claim(self, uid: int, owner: Path) -> bool:
        if has_account(uid):
            return False
        path = self.claims_dir / str(uid)
        if path.exists():
            current = self._owner_of(uid)
            if (current is not None and Path(current).exists()) or uid_runs_processes(uid):
                return False
            path.unlink()  # stale: its owner's directory is gone and nothing runs as it
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            json.dump({"owner": str(owner)}, handle)
        return True

    def _owner_of(self, uid: int) -> str | None:
        try:
            owner = json.loads((self.claims_dir / str(uid)).read_text()).get("owner")
        except (OSError, ValueError, AttributeError):
            return None
        return owner if isinstance(owner, str) else None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.ready()
        with open(self.claims_dir / ".lock", "ab") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            yield
