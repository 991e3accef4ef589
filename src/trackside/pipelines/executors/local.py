"""The `local` executor: `sh -c RUN` as a subprocess of the platform's host; `image` is ignored.

For tests and trusted operators only: off unless `pipeline_local_executor: true`. Each attempt runs
in a small shell wrapper, in a session of its own, that writes its own pid, sends the step's output to
`log` and, when the step ends, its exit code to `exit` (each a single short write by shell builtins)
in the attempt's work directory. Nothing about the step lives only in the platform's memory: killed
with SIGKILL, the platform restarts, finds the pid file, waits for the `exit` file (or notices the
process gone without one), and never starts the step twice.

The step gets a small environment: PATH, HOME, LANG, TZ and TMPDIR of the platform, then the step's
`env`; the platform's own variables (its keys among them) are not passed on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from pathlib import Path

from trackside.pipelines.executors.base import ExecutorUnavailable, Handle, StepLaunch, StepOutcome

NAME = "local"
PASSED_ENV = ("PATH", "HOME", "LANG", "TZ", "TMPDIR")
KILL_GRACE = 3.0
# The wrapper: its pid first, then the step with its output to `log`, then the step's exit code. Shell
# builtins only (one process besides the step's own `sh`): each file is one short write, and a reader
# that finds one empty or unreadable reads it again later.
WRAPPER = (
    'echo $$ > "$TS_STEP_DIR/pid"; '
    'sh -c "$TS_STEP_RUN" > "$TS_STEP_LOG" 2>&1 < /dev/null; '
    'echo $? > "$TS_STEP_DIR/exit"'
)


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (tells a pid apart from a reused one)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(handle: Handle) -> bool:
    pid = int(handle.get("pid") or 0)
    if pid <= 0:
        return False
    start = _start_time(pid)
    if start is None or (handle.get("start") and start != handle["start"]):
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _read_exit(directory: Path) -> int | None:
    try:
        return int((directory / "exit").read_text().strip())
    except (OSError, ValueError):
        return None


class LocalExecutor:
    name = NAME

    def __init__(self, poll_interval: float = 0.2) -> None:
        self.poll_interval = poll_interval
        self._children: dict[str, asyncio.subprocess.Process] = {}

    async def launch(self, launch: StepLaunch) -> Handle:
        directory = launch.work_dir
        directory.mkdir(parents=True, exist_ok=True)
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        env.update(launch.env)
        env.update(TS_STEP_DIR=str(directory), TS_STEP_RUN=launch.command, TS_STEP_LOG=str(launch.log_path))
        try:
            process = await asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                WRAPPER,
                env=env,
                cwd=str(directory),
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            raise ExecutorUnavailable(f"cannot start a local process: {exc}") from exc
        self._children[str(directory)] = process
        return {"dir": str(directory), "pid": process.pid, "start": _start_time(process.pid)}

    async def attach(self, launch: StepLaunch, handle: Handle | None) -> Handle | None:
        directory = Path(handle["dir"]) if handle else launch.work_dir
        pid_file = directory / "pid"
        if not directory.is_dir():
            return None
        # A crash right after the wrapper started can leave it without its pid file for a moment.
        for _ in range(20):
            if pid_file.exists() or _read_exit(directory) is not None:
                break
            await asyncio.sleep(0.1)
        pid = 0
        for _ in range(20):
            try:
                pid = int(pid_file.read_text().strip())
                break
            except (OSError, ValueError):  # absent, or caught between its creation and its write
                await asyncio.sleep(0.1)
        if not pid:
            return None
        if handle and int(handle.get("pid") or 0) == pid:
            return handle
        return {"dir": str(directory), "pid": pid, "start": _start_time(pid)}

    async def wait(self, launch: StepLaunch, handle: Handle) -> StepOutcome:
        directory = Path(handle["dir"])
        child = self._children.get(str(directory))
        if child is not None:
            await child.wait()
            self._children.pop(str(directory), None)
            code = _read_exit(directory)
            if code is None:
                return StepOutcome(None, f"the step's process ended without an exit code (status {child.returncode})")
            return StepOutcome(code)
        # Re-attached after a restart: not our child, so watch its files and its pid.
        while True:
            code = _read_exit(directory)
            if code is not None:
                return StepOutcome(code)
            if not _alive(handle):
                code = _read_exit(directory)
                if code is not None:
                    return StepOutcome(code)
                return StepOutcome(None, "the step's process is gone and left no exit code")
            await asyncio.sleep(self.poll_interval)

    async def kill(self, launch: StepLaunch, handle: Handle) -> None:
        if not _alive(handle):
            return
        pid = int(handle["pid"])
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + KILL_GRACE
        while _alive(handle) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if _alive(handle):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)

    async def release(self, launch: StepLaunch, handle: Handle) -> None:
        self._children.pop(str(handle.get("dir")), None)
