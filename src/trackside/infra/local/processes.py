"""Operating-system side of a replica: environment, ports, spawning, liveness and stopping.

Each replica runs in its own session (process group), so stopping it reaches whatever it spawned, and
writes to a log file it holds open itself (O_APPEND): it never depends on the platform process staying
alive, and the platform can restart without taking its jobs down.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Variables a job inherits from the platform's environment: the basics of finding programs and of
# text and time. Everything else (TRACKSIDE_* settings, credentials of the operator's shell, the
# platform's HOME and TMPDIR) stays out; HOME and TMPDIR are the replica's own (replica_dirs.py).
INHERITED_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")


def base_env() -> dict[str, str]:
    env = {key: os.environ[key] for key in INHERITED_ENV if key in os.environ}
    env.setdefault("PATH", os.defpath)
    # Job output goes to a file: without this, Python jobs would hold their log lines in a buffer.
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port(exclude: Iterable[int] = ()) -> int:
    """A loopback port free right now (bound to port 0 and released); the job binds it next."""
    excluded = set(exclude)
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in excluded:
            return port
    raise OSError("no free loopback port found")


def port_is_free(port: int) -> bool:
    """True when a server could listen on `port` now (servers set SO_REUSEADDR, so TIME_WAIT is fine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def spawn(command: list[str], cwd: str, env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start `command` in its own session with stdout+stderr appended to `log_path`.

    Returns the process and the log size before it started (where its own output begins).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        offset = os.fstat(fd).st_size
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(fd)
    return process, offset


def _proc_stat_state(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) S ...": comm may contain spaces and parentheses, the state follows the last ')'.
    rest = raw.rsplit(")", 1)[-1].split()
    return rest[0] if rest else None


def pid_alive(pid: int) -> bool:
    """True when `pid` exists and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    state = _proc_stat_state(pid)
    return state not in ("Z", "X")


def process_matches(pid: int, command: list[str]) -> bool:
    """True when `pid` is alive and still runs `command` (not a recycled pid running something else)."""
    if not pid_alive(pid):
        return False
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # no procfs: liveness is all we can tell
    cmdline = [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]] if raw else []
    if not cmdline:
        return False  # a zombie or a kernel thread
    if cmdline == command:
        return True
    # A script run through its shebang shows as `interpreter script args...`.
    tail = command[1:]
    return (
        len(cmdline) > len(command) - 1
        and cmdline[len(cmdline) - len(tail) :] == tail
        and any(os.path.basename(part) == os.path.basename(command[0]) for part in cmdline)
    )


@dataclass
class Running:
    """A process to stop: our child (`process` set, so it is reaped) or an adopted pid."""

    pid: int
    command: list[str]
    process: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return process_matches(self.pid, self.command)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def stop_processes(processes: list[Running], grace: float = 5.0) -> None:
    """SIGTERM each process group, wait up to `grace` seconds, then SIGKILL what is left."""
    targets = [p for p in processes if p.alive()]
    for proc in targets:
        _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    pending = list(targets)
    delay = 0.01
    while pending and time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
        pending = [p for p in pending if p.alive()]
    for proc in targets:
        # The leader may be gone while its children linger in the group: kill the group either way.
        _signal_group(proc.pid, signal.SIGKILL)
        if proc.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.process.wait(timeout=2)
