"""Keeping the manager's memory in line with the replica state files.

The state files say what should run (several platform processes may share one data dir and deploy
through them). Each file's (mtime, size, inode) marker tells whether it changed since this process
last read or wrote it, so reconciling costs a `stat` per replica when nothing changed.
"""

from __future__ import annotations

import contextlib
import logging

from trackside.infra.local.layout import LocalLayout
from trackside.infra.local.processes import process_matches
from trackside.infra.local.replica import Replica
from trackside.infra.local.state import read_state, write_state

log = logging.getLogger(__name__)

# The manager's table: (job name, version) -> replica index -> replica.
ReplicaTable = dict[tuple[str, str], dict[int, Replica]]


def record(rep: Replica) -> None:
    """Write the replica's state file and remember its marker, so reconciling skips our own write."""
    write_state(rep.path, rep.state)
    st = rep.path.stat()
    rep.marker = (st.st_mtime_ns, st.st_size, st.st_ino)


def reconcile(table: ReplicaTable, layout: LocalLayout, now: float, startup: bool = False) -> None:
    """Adopt new state files, follow changed ones, drop replicas whose file is gone.

    A replica whose file names a process that no longer runs is marked exited with its restart due
    at `now` (monotonic): it should run, so the watcher starts it again at once.
    """
    seen: set[tuple[str, str, int]] = set()
    for name, version, index, path in layout.state_files():
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        marker = (st.st_mtime_ns, st.st_size, st.st_ino)
        current = table.get((name, version), {}).get(index)
        if current is not None and current.marker == marker:
            seen.add((name, version, index))
            continue
        state = read_state(path)
        if state is None:
            continue
        seen.add((name, version, index))
        if current is not None and current.state.pid == state.pid:
            current.state, current.marker = state, marker
            continue
        rep = Replica(state, path, layout.log_file(name, version, index), marker=marker)
        with contextlib.suppress(OSError):
            rep.log_offset = rep.log_path.stat().st_size
        if not process_matches(state.pid, state.command):
            rep.exited, rep.exit_code = True, state.last_exit_code
            rep.error = state.error or "process not running"
            rep.next_restart_at = now  # it should run: start it again at once
        elif startup:
            log.info("local target: adopted replica %s of job %s %s (pid %s)", index, name, version, state.pid)
        table.setdefault((name, version), {})[index] = rep
    for key in list(table):
        reps = table[key]
        for index in list(reps):
            if (key[0], key[1], index) not in seen:
                del reps[index]
        if not reps:
            del table[key]
