"""Noticing plugin changes made by another process: a poll of `last-change.txt`.

The store rewrites `last-change.txt` (a new file renamed into place) after every install, uninstall
or config change. Each component's engine runs one `PluginWatcher` that stats it about once a second
and reloads when its identity changes. A stat a second costs nothing and, unlike inotify, works on
every filesystem a shared plugins directory may live on (NFS, a Kubernetes volume).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 1.0

Signature = tuple[int, int, int, int] | None


def file_signature(path: Path) -> Signature:
    """What changes whenever the file is rewritten: inode (renamed into place), mtime, size."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size, st.st_ctime_ns)


class PluginWatcher:
    def __init__(self, path: Path, on_change: Callable[[], None], interval: float = DEFAULT_INTERVAL) -> None:
        self.path = path
        self.on_change = on_change
        self.interval = interval
        self._seen = file_signature(path)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def mark_seen(self) -> None:
        """The owner already reloaded for the current state (e.g. it made the change itself)."""
        self._seen = file_signature(self.path)

    def check(self) -> bool:
        """Reload if the file changed since last seen; returns whether it did."""
        current = file_signature(self.path)
        if current == self._seen:
            return False
        self._seen = current
        try:
            self.on_change()
        except Exception:
            log.exception("reloading plugins after a change of %s failed", self.path)
        return True

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="plugin-watcher", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.check()
