"""The executor interface: how a container step (`image` + `run`) is started, watched, killed and found again.

Built in: `local` (a subprocess), `docker` (the Docker engine) and `kubernetes` (a `batch/v1` Job per
attempt): `launch` creates the Job (`backoffLimit: 0`, `restartPolicy: Never`, container `main`,
labels from `StepLaunch.labels` and the platform's id, `activeDeadlineSeconds` from the timeout) and
returns `{"job": NAME, "namespace": NS}`; `attach` finds it by name or by those labels (so a crash
between creating it and recording the handle never creates a second one); `wait` follows its pod
through a list + watch that re-lists when a watch ends (a closed watch is never success) and copies
the pod's log into `log_path` before returning; `kill` and `release` delete it.

The scheduler records the handle `launch` returns in the step's row. After a crash it calls
`attach(launch, handle)` for every step that was RUNNING: the executor answers the handle of the work
still there (running or finished), or None when nothing was ever started, and the scheduler then
launches it. A successful step is never launched again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

LABEL_RUN = "trackside.pipeline.run"
LABEL_JOB = "trackside.pipeline.job"
LABEL_ATTEMPT = "trackside.pipeline.attempt"

Handle = dict[str, Any]  # JSON-able: stored in pipeline_step.handle


@dataclass(frozen=True)
class StepLaunch:
    """One attempt of one container step, with everything an executor needs to run it."""

    run_uid: str
    job: str
    attempt: int
    image: str
    command: str  # run as `sh -c COMMAND`
    env: dict[str, str]
    work_dir: Path  # this attempt's directory, private to the executor
    log_path: Path  # where the step's output (stdout and stderr) ends up
    timeout_seconds: float | None = None

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL_RUN: self.run_uid, LABEL_JOB: self.job, LABEL_ATTEMPT: str(self.attempt)}

    @property
    def name(self) -> str:
        """A name unique to this attempt, fit for a container or a Kubernetes object (<= 63 chars)."""
        suffix = f"-{self.attempt}"
        return f"ts-{self.run_uid[:8]}-{self.job}"[: 63 - len(suffix)].rstrip("-_.") + suffix


@dataclass(frozen=True)
class StepOutcome:
    """How an attempt ended: an exit code, or an error that kept it from having one."""

    exit_code: int | None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    log: str | None = None  # the attempt's log when it was kept in memory (call steps), not in its log file

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and self.error is None

    @property
    def reason(self) -> str | None:
        if self.error:
            return self.error
        if self.exit_code not in (None, 0):
            return f"exited with code {self.exit_code}"
        return None


class ExecutorUnavailable(Exception):
    """The executor cannot start this step (image missing, engine unreachable): the attempt fails with this."""


@runtime_checkable
class StepExecutor(Protocol):
    name: str

    async def launch(self, launch: StepLaunch) -> Handle:
        """Start the attempt; return once it exists. Raises ExecutorUnavailable when it cannot."""
        ...

    async def attach(self, launch: StepLaunch, handle: Handle | None) -> Handle | None:
        """After a crash: the handle of this attempt's work if it exists (running or ended), else None."""
        ...

    async def wait(self, launch: StepLaunch, handle: Handle) -> StepOutcome:
        """Until the attempt ends, with its output in `launch.log_path`. Cancelling this does not stop it."""
        ...

    async def kill(self, launch: StepLaunch, handle: Handle) -> None:
        """Stop the attempt now (cancel, timeout)."""
        ...

    async def release(self, launch: StepLaunch, handle: Handle) -> None:
        """Remove what the ended attempt left behind (a container), once its outcome is recorded."""
        ...
