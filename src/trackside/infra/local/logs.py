"""Job log files: tailing and following, plus the live logs streamer.

Files are rotated by copytruncate (`rotation.py`): followers notice the truncation (size below their
offset) and finish reading the rotated copy before starting over.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from trackside.infra.base import LogsStreamer, session_job
from trackside.infra.local.layout import LocalLayout

# Rotation lives in rotation.py; re-exported for callers that read and rotate logs together.
from trackside.infra.local.rotation import rotate_if_needed as rotate_if_needed

log = logging.getLogger(__name__)

_BLOCK = 64 * 1024


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def tail_lines(path: Path, n: int) -> list[str]:
    """The last `n` lines of `path` (the whole file when n <= 0), reading backwards from the end.

    When the current file has fewer than `n` lines, the rotated `.1` copy supplies the rest.
    """
    if n <= 0:
        try:
            return _decode(path.read_bytes()).splitlines()
        except FileNotFoundError:
            return []
    lines = tail_lines_single(path, n)
    if len(lines) < n:
        lines = tail_lines_single(path.with_name(path.name + ".1"), n - len(lines)) + lines
    return lines


def tail_lines_single(path: Path, n: int) -> list[str]:
    """Like `tail_lines` but never looks at rotated copies."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            pos = f.tell()
            data = b""
            while pos > 0 and data.count(b"\n") <= n:
                step = min(_BLOCK, pos)
                pos -= step
                f.seek(pos)
                data = f.read(step) + data
    except FileNotFoundError:
        return []
    return _decode(data).splitlines()[-n:] if n > 0 else []


def output_since(path: Path, offset: int, limit: int = _BLOCK) -> str:
    """What was appended to `path` after `offset` (at most `limit` bytes, from the end)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            end = f.tell()
            start = max(offset if offset <= end else 0, end - limit)
            f.seek(start)
            return _decode(f.read())
    except FileNotFoundError:
        return ""


@dataclass
class _Followed:
    path: Path
    prefix: str
    offset: int = 0
    inode: int = 0
    partial: bytes = b""


def _read_new(entry: _Followed) -> list[str]:
    """Complete lines appended to `entry.path` since the last call."""
    try:
        st = entry.path.stat()
    except FileNotFoundError:
        return []
    chunks: list[bytes] = []
    if st.st_ino != entry.inode:
        entry.inode, entry.offset, entry.partial = st.st_ino, 0, b""
    elif st.st_size < entry.offset:
        # Truncated by copytruncate: the rest of what we had not read is in the rotated copy.
        rotated = entry.path.with_name(entry.path.name + ".1")
        with contextlib.suppress(OSError), open(rotated, "rb") as f:
            f.seek(entry.offset)
            chunks.append(f.read())
        entry.offset = 0
    if st.st_size > entry.offset:
        with open(entry.path, "rb") as f:
            f.seek(entry.offset)
            data = f.read()
        entry.offset += len(data)
        chunks.append(data)
    if not chunks:
        return []
    data = entry.partial + b"".join(chunks)
    *complete, entry.partial = data.split(b"\n")
    return [entry.prefix + _decode(line) for line in complete]


def follow_files(
    list_files: Callable[[], list[Path]],
    tail: int,
    stop_event: threading.Event,
    interval: float = 0.2,
) -> Iterator[str]:
    """Yield the last `tail` lines of each file (0: all, negative: none), then new lines until `stop_event`.

    `list_files` is asked again on every round, so replicas added later are followed too. Lines are
    prefixed with the replica's file name when more than one file is followed.
    """
    followed: dict[Path, _Followed] = {}
    first = True
    while not stop_event.is_set():
        paths = list_files()
        multi = len(paths) > 1
        for path in paths:
            if path not in followed:
                entry = _Followed(path, f"[{path.stem}] " if multi else "")
                followed[path] = entry
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue  # inode 0: read from its start once it appears
                entry.inode, entry.offset = st.st_ino, st.st_size
                if first and tail >= 0:
                    for line in tail_lines(path, tail):
                        yield entry.prefix + line
            yield from _read_new(followed[path])
        first = False
        if stop_event.wait(interval):
            break


class LocalLogsStreamer(LogsStreamer):
    """Live log sessions over the replicas' log files, one following thread per session."""

    def __init__(self, layout: LocalLayout, replica_indices: Callable[[str, str], list[int]]) -> None:
        self.layout = layout
        self._replica_indices = replica_indices
        self._sessions: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def log_files(self, name: str, version: str) -> list[Path]:
        indices = self._replica_indices(name, version)
        if indices:
            return [self.layout.log_file(name, version, i) for i in indices]
        directory = self.layout.job_log_dir(name, version)
        return sorted(directory.glob("replica-*.log")) if directory.is_dir() else []

    def follow_logs(self, name: str, version: str, tail: int, stop_event: threading.Event) -> Iterator[str]:
        """Recent lines then new ones, for HTTP streaming; ends when `stop_event` is set."""
        return follow_files(lambda: self.log_files(name, version), tail, stop_event)

    def create_session(
        self,
        session_id: str,
        resource_properties: dict[str, str],
        on_next_line: Callable[[str, str], None],
    ) -> None:
        name, version, tail = session_job(resource_properties)
        self.layout.job_log_dir(name, version)  # validates name and version
        stop = threading.Event()
        with self._lock:
            previous = self._sessions.pop(session_id, None)
            if previous is not None:
                previous.set()
            self._sessions[session_id] = stop

        def run() -> None:
            try:
                for line in self.follow_logs(name, version, tail, stop):
                    on_next_line(session_id, line)
            except Exception:
                log.exception("logs session %s for job %s %s failed", session_id, name, version)

        threading.Thread(target=run, name=f"local-logs-{session_id}", daemon=True).start()

    def close_session(self, session_id: str) -> None:
        with self._lock:
            stop = self._sessions.pop(session_id, None)
        if stop is not None:
            stop.set()
