"""Rotation of the replicas' log files: copytruncate, on a schedule kept by the supervising process.

A replica writes straight into its file (O_APPEND), so rotation has to be copytruncate: copy the file
to `.1` and truncate it in place; the job's next write lands at the new end. Lines written between the
copy and the truncation are lost, the known price of copytruncate. Readers (`logs.py`) notice the
truncation and finish reading the rotated copy first.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_KEEP = 3


def rotate_if_needed(path: Path, max_bytes: int = DEFAULT_MAX_BYTES, keep: int = DEFAULT_KEEP) -> bool:
    """Copytruncate `path` when it is over `max_bytes`, keeping `keep` rotated copies. True if rotated."""
    try:
        if path.stat().st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    for i in range(keep, 1, -1):
        older = path.with_name(f"{path.name}.{i - 1}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{i}"))
    if keep >= 1:
        shutil.copyfile(path, path.with_name(f"{path.name}.1"))
    os.truncate(path, 0)
    return True


class LogRotation:
    """Rotates a set of log files at most once per `interval` seconds."""

    def __init__(self, interval: float, max_bytes: int = DEFAULT_MAX_BYTES, keep: int = DEFAULT_KEEP) -> None:
        self.interval = interval
        self.max_bytes = max_bytes
        self.keep = keep
        self._last = 0.0

    def due(self, now: float) -> bool:
        """True (and the clock restarted) when a round of rotation is due at monotonic time `now`."""
        if now - self._last < self.interval:
            return False
        self._last = now
        return True

    def rotate(self, paths: Iterable[Path]) -> None:
        for path in paths:
            try:
                rotate_if_needed(path, self.max_bytes, self.keep)
            except OSError as exc:
                log.warning("local target: rotating %s failed: %s", path, exc)
