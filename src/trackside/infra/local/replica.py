"""What the replica manager knows of one replica, and the snapshot of it that the monitor reads.

A `Replica` is the manager's record: its state (also in its state file), our `Popen` handle when we
started it, and what only memory holds (restart schedule, crash counts). A `ReplicaView` is a
consistent, immutable copy of it taken under the manager's lock.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

from trackside.infra.local.processes import Running
from trackside.infra.local.state import ReplicaState

# How many lines of a replica's output an error message carries.
ERROR_LOG_LINES = 20


def describe_exit(code: int | None) -> str:
    if code is None:
        return "process exited"
    if code < 0:
        try:
            return f"process exited with code {code} (killed by {signal.Signals(-code).name})"
        except ValueError:
            return f"process exited with code {code}"
    return f"process exited with code {code}"


@dataclass
class Replica:
    state: ReplicaState
    path: Path  # its state file
    log_path: Path
    process: Popen[bytes] | None = None  # None for a process adopted from an earlier platform run
    marker: tuple[int, int, int] | None = None  # (mtime_ns, size, inode) of the state file we last saw
    exited: bool = False
    exit_code: int | None = None
    next_restart_at: float | None = None  # monotonic time of the scheduled restart
    consecutive_crashes: int = 0
    crashes: int = 0  # exits seen by this manager (not counting failed port binds)
    log_offset: int = 0  # where this process's output starts in the log
    bind_retries: int = 0
    new_port: bool = False
    error: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.state.name, self.state.version

    def running(self) -> Running:
        """A handle to stop this replica's process with."""
        return Running(self.state.pid, self.state.command, self.process)


@dataclass(frozen=True)
class ReplicaView:
    """A consistent snapshot of one replica, for the monitor."""

    name: str
    version: str
    index: int
    pid: int
    port: int
    tag: str
    running: bool
    exit_code: int | None
    restart_in: float | None
    restart_count: int
    crashes: int
    retrying_bind: bool
    error: str | None
    job_type_version: str
    deployment_timestamp: int
    log_path: Path
    start_time: float = 0.0  # when the replica (its latest process) was started, wall clock

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    def of(cls, rep: Replica, now: float, restarts_scheduled: bool) -> ReplicaView:
        """The view of `rep` at monotonic time `now`; `restarts_scheduled`: this process restarts it."""
        restart_in = None
        if rep.exited and rep.next_restart_at is not None and restarts_scheduled:
            restart_in = max(0.0, rep.next_restart_at - now)
        s = rep.state
        return cls(
            name=s.name,
            version=s.version,
            index=s.index,
            pid=s.pid,
            port=s.port,
            tag=s.tag,
            running=not rep.exited,
            exit_code=rep.exit_code,
            restart_in=restart_in,
            restart_count=s.restart_count,
            crashes=rep.crashes,
            retrying_bind=rep.exited and rep.new_port,
            error=rep.error,
            job_type_version=s.job_type_version,
            deployment_timestamp=s.deployment_timestamp,
            log_path=rep.log_path,
            start_time=s.start_time,
        )
