"""Which platform process supervises the local target's replicas on a data dir.

Several platform processes may share one data dir (split components, a restart overlapping the old
process). Only the one holding an exclusive `flock` on `owner.lock` restarts crashed replicas or
rotates their logs, so no replica is ever restarted twice. The lock dies with its process, so a
successor takes over without any clean-up; the file holds the owner's pid for people reading it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import IO


class OwnershipLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        self._held = False

    @property
    def held(self) -> bool:
        return self._held

    def try_acquire(self) -> bool:
        """Take the lock if no other process holds it; True when this process holds it now."""
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "ab")  # noqa: SIM115 (held for our lifetime)
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return self._held
        if not self._held:
            self._held = True
            with contextlib.suppress(OSError):
                self._file.truncate(0)
                self._file.write(f"{os.getpid()}\n".encode())
                self._file.flush()
        return True

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        self._held = False
