"""JobMonitor of the local target: what runs, whether it answers, and its recent output.

Probes go straight to each replica's loopback port. Waiting for a fresh deployment polls fast at
first (20 ms, growing to 500 ms) because the local target aims at a first answer within 2 s of a
deploy, and fails at once when a replica's process exits instead of waiting for a timeout. While a
redeploy runs two deployments of a version side by side, the version is reported as the one serving
(`trackside.infra.generations`), and waiting concerns only the new deployment's replicas.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from trackside.domain import JobDto
from trackside.errors import DeployFailed
from trackside.infra.base import JobMonitor
from trackside.infra.generations import by_tag, serving
from trackside.infra.local.deployer import TARGET_NAME
from trackside.infra.local.logs import tail_lines
from trackside.infra.local.replica import ERROR_LOG_LINES, ReplicaView, describe_exit
from trackside.infra.local.replicas import ReplicaManager
from trackside.infra.probes import last_call_timestamp, listed_job, live_error, probe
from trackside.infra.readiness import ReplicaEndpoint, wait_until_ready

if TYPE_CHECKING:
    from trackside.config import Settings

HOST = "127.0.0.1"
FIRST_POLL_DELAY = 0.02
MAX_POLL_DELAY = 0.5
MAX_PROBE_THREADS = 16
# A replica that has answered before is reported in error only after this many failed probes in
# a row (as a Kubernetes probe's failureThreshold): one slow answer on a loaded machine is not an
# outage. A replica that never answered (just started or restarted, or met by a platform that has
# just started) is booting while its process runs, for as long as a deployment waits for it to turn
# live (`job_live_timeout`) and then ready (`job_ready_timeout`); after that it is in error.
FAILURE_THRESHOLD = 2


@dataclass
class _ReplicaHealth:
    view: ReplicaView
    live: bool = False
    ready: bool = False
    error: str | None = None
    last_call: int | None = None
    booting: bool = False


def _probe_replica(view: ReplicaView) -> _ReplicaHealth:
    health = _ReplicaHealth(view)
    if not view.running:
        restart = f", restarting in {view.restart_in:.1f}s" if view.restart_in is not None else ""
        reason = view.error.split("\n", 1)[0].rstrip(":") if view.error else describe_exit(view.exit_code)
        health.error = f"replica {view.index}: {reason}{restart}"
        return health
    live = probe(HOST, view.port, "/live")
    if not live.ok:
        what = f"not answering ({live.error})" if live.status is None else f"not live: {live_error(live)}"
        health.error = f"replica {view.index} ({view.address}): {what}"
        return health
    health.live = True
    ready = probe(HOST, view.port, "/ready")
    if not ready.ok:
        health.error = f"replica {view.index} ({view.address}): not ready: {ready.describe()}"
        return health
    health.ready = True
    metrics = probe(HOST, view.port, "/metrics")
    if metrics.ok:
        health.last_call = last_call_timestamp(metrics.body)
    return health


class LocalJobMonitor(JobMonitor):
    def __init__(self, manager: ReplicaManager, live_timeout: float, ready_timeout: float) -> None:
        self.manager = manager
        self.live_timeout = live_timeout
        self.ready_timeout = ready_timeout
        self._failures: dict[tuple[str, str, int, int | None], int] = {}
        self._answered: set[tuple[str, str, int, int | None]] = set()
        self._slots: set[tuple[str, str, int]] = set()  # (name, version, replica index) heard answering
        self._lock = threading.Lock()  # deployments add to _slots while the supervisor's listing judges

    def list_jobs(self, config: Settings) -> list[JobDto]:
        jobs = self.manager.snapshot_all()
        views = [view for replicas in jobs.values() for view in replicas]
        if not views:
            return []
        with ThreadPoolExecutor(max_workers=min(MAX_PROBE_THREADS, len(views))) as pool:
            health = dict(
                zip([(v.name, v.version, v.index) for v in views], pool.map(_probe_replica, views), strict=True)
            )
        with self._lock:
            self._judge_failures(health.values(), time.time())
        result = []
        for (name, version), every in jobs.items():
            replicas = serving(
                by_tag(every, lambda v: v.tag),
                started=lambda v: (v.deployment_timestamp, v.start_time),
                ready=lambda v: health[(v.name, v.version, v.index)].ready,
            )
            checks = [health[(name, version, v.index)] for v in replicas]
            first = replicas[0]
            result.append(
                listed_job(
                    name,
                    version,
                    target=TARGET_NAME,
                    image_tag=first.tag,
                    job_type_version=first.job_type_version,
                    replicas=len(replicas),
                    restarts=sum(v.restart_count for v in replicas),
                    first_address=first.address,
                    answering=[c.view.address for c in checks if c.live],
                    errors=[c.error for c in checks if c.error],
                    last_calls=[c.last_call for c in checks if c.last_call],
                    booting=sum(1 for c in checks if c.booting),
                    pids=[v.pid for v in replicas],
                )
            )
        return result

    def _judge_failures(self, checks: Iterable[_ReplicaHealth], now: float) -> None:
        """Which failed probes are errors: not a single one of a replica that answered before, nor
        those of a replica booting in a slot this monitor never heard answer (a platform that has just
        started meets its replicas so). A replica restarted after a crash is in error until it answers."""
        failures: dict[tuple[str, str, int, int | None], int] = {}
        answered: set[tuple[str, str, int, int | None]] = set()
        slots: set[tuple[str, str, int]] = set()
        for check in checks:
            view = check.view
            key = (view.name, view.version, view.index, view.pid)
            slot = key[:3]
            if slot in self._slots:
                slots.add(slot)
            if check.error is None:
                answered.add(key)
                slots.add(slot)
            elif view.running and slot not in self._slots:
                boot_time = self.live_timeout if not check.live else self.live_timeout + self.ready_timeout
                if now - view.start_time < boot_time:
                    check.error, check.booting = None, True
            elif view.running and key in self._answered:
                failures[key] = self._failures.get(key, 0) + 1
                if failures[key] < FAILURE_THRESHOLD:
                    check.error, check.live, check.ready = None, True, True
                    answered.add(key)
        # Replicas that are gone (or restarted: a new pid) drop out of both; slots of jobs gone drop out.
        self._failures, self._answered, self._slots = failures, answered, slots

    def check_job_condition(
        self,
        job: JobDto,
        deployment_timestamp: int = 0,
        on_job_alive: Callable[[], None] | None = None,
        logs_on_error: bool = True,
    ) -> None:
        name, version = job.name, job.version
        baseline: dict[int, int] = {}

        def fail(reason: str, view: ReplicaView | None) -> NoReturn:
            self._fail(job, reason, view, logs_on_error)

        def replicas() -> list[ReplicaEndpoint]:
            # Only this deployment's replicas: a side-by-side redeploy's predecessors run alongside.
            views = [v for v in self.manager.snapshot(name, version) if not job.image_tag or v.tag == job.image_tag]
            if not views:
                raise DeployFailed(f"job {name} {version} has no replicas on the local target")
            if not baseline:
                baseline.update({v.index: v.crashes for v in views})
            for view in views:
                crashed = view.crashes > baseline.get(view.index, 0)
                if (not view.running and not view.retrying_bind) or crashed:
                    fail(
                        f"job process exited with code {view.exit_code}"
                        if view.exit_code is not None
                        else "job process exited",
                        view,
                    )
            return [ReplicaEndpoint(v.index, f"{HOST}:{v.port}", v.running, v) for v in views]

        wait_until_ready(
            replicas,
            fail,
            deployment_timestamp=deployment_timestamp,
            on_job_alive=on_job_alive,
            live_timeout=self.live_timeout,
            ready_timeout=self.ready_timeout,
            first_delay=FIRST_POLL_DELAY,
            max_delay=MAX_POLL_DELAY,
        )
        # The deployment heard every replica answer: one that restarts later has crashed, not booted.
        with self._lock:
            self._slots |= {(name, version, index) for index in baseline}

    def _fail(
        self,
        job: JobDto,
        reason: str,
        view: ReplicaView | None,
        logs_on_error: bool,
    ) -> NoReturn:
        if not logs_on_error:
            raise DeployFailed(reason)
        if view is not None:
            lines = "\n".join(tail_lines(view.log_path, ERROR_LOG_LINES))
        else:
            lines = self.read_recent_logs(job, ERROR_LOG_LINES)
        raise DeployFailed(f"{reason}:\n{lines}" if lines else reason)

    def read_recent_logs(self, job: JobDto, tail: int = 20) -> str:
        """The last `tail` lines of each replica (all when tail=0), prefixed `[replica-i]` when several."""
        views = self.manager.snapshot(job.name, job.version)
        if job.image_tag and any(v.tag == job.image_tag for v in views):
            views = [v for v in views if v.tag == job.image_tag]
        if views:
            paths = [v.log_path for v in views]
        else:
            directory = self.manager.layout.job_log_dir(job.name, job.version)
            paths = sorted(directory.glob("replica-*.log")) if directory.is_dir() else []
        if len(paths) == 1:
            return "\n".join(tail_lines(paths[0], tail))
        return "\n".join(f"[{path.stem}] {line}" for path in paths for line in tail_lines(path, tail))
