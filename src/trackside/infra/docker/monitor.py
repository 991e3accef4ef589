"""JobMonitor of a Docker target: what runs (found by labels), whether it answers, its recent output.

Probes go to each replica's address as the gateway would call it. Waiting for a fresh deployment
fails at once, with the container's last lines, when a container exits or is being restarted by the
engine, rather than waiting for the timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, NoReturn

from trackside.domain import JobDto
from trackside.errors import DeployFailed
from trackside.infra.base import JobMonitor
from trackside.infra.docker.containers import JobContainers
from trackside.infra.docker.naming import Replica
from trackside.infra.generations import by_tag, serving
from trackside.infra.probes import last_call_timestamp, listed_job, live_error, probe
from trackside.infra.readiness import ReplicaEndpoint, split_address, wait_until_ready
from trackside.infra.recent_logs import fail_deploy, recent_logs

if TYPE_CHECKING:
    from trackside.config import Settings

FIRST_POLL_DELAY = 0.05
MAX_POLL_DELAY = 0.5
MAX_PROBE_THREADS = 16


def _describe_state(replica: Replica) -> str:
    if replica.status == "restarting" or (replica.running and replica.restart_count):
        return f"container {replica.container} keeps exiting (restarted {replica.restart_count} times)"
    if replica.exit_code is not None:
        return f"container {replica.container} exited with code {replica.exit_code}"
    return f"container {replica.container} is {replica.status}"


def _health(replica: Replica) -> tuple[bool, str | None, int | None]:
    """(ready, error, last call timestamp) of one replica."""
    if not replica.running:
        return False, _describe_state(replica), None
    host, port = split_address(replica.address)
    live = probe(host, port, "/live")
    if not live.ok:
        what = f"not answering ({live.error})" if live.status is None else f"not live: {live_error(live)}"
        return False, f"replica {replica.index} ({replica.address}): {what}", None
    ready = probe(host, port, "/ready")
    if not ready.ok:
        return False, f"replica {replica.index} ({replica.address}): not ready: {ready.describe()}", None
    metrics = probe(host, port, "/metrics")
    return True, None, last_call_timestamp(metrics.body) if metrics.ok else None


Checked = tuple[Replica, tuple[bool, str | None, int | None]]


def _serving(checked: list[Checked]) -> list[Checked]:
    """The deployment that serves a version while a side-by-side redeploy runs two (infra.generations)."""
    return serving(
        by_tag(checked, lambda c: c[0].tag),
        started=lambda c: (c[0].timestamp, c[0].created),
        ready=lambda c: c[1][0],
    )


class DockerJobMonitor(JobMonitor):
    def __init__(self, target: str, containers: JobContainers, live_timeout: float, ready_timeout: float) -> None:
        self.target = target
        self.containers = containers
        self.live_timeout = live_timeout
        self.ready_timeout = ready_timeout

    def list_jobs(self, config: Settings) -> list[JobDto]:
        replicas = self.containers.find()
        if not replicas:
            return []
        with ThreadPoolExecutor(max_workers=min(MAX_PROBE_THREADS, len(replicas))) as pool:
            health = list(pool.map(_health, replicas))
        versions: dict[tuple[str, str], list[Checked]] = {}
        for replica, checked in zip(replicas, health, strict=True):
            versions.setdefault((replica.name, replica.version), []).append((replica, checked))
        result = []
        for (name, version), checked_replicas in versions.items():
            members = _serving(checked_replicas)
            first = members[0][0]
            result.append(
                listed_job(
                    name,
                    version,
                    target=self.target,
                    image_tag=first.tag,
                    job_type_version=first.job_type_version.partition(":")[2],
                    replicas=len(members),
                    restarts=sum(r.restart_count for r, _ in members),
                    first_address=first.address,
                    answering=[r.address for r, (ok, _, _) in members if ok],
                    errors=[error for _, (_, error, _) in members if error],
                    last_calls=[call for _, (_, _, call) in members if call],
                    containers=[r.container for r, _ in members],
                )
            )
        return result

    def check_job_condition(
        self,
        job: JobDto,
        deployment_timestamp: int = 0,
        on_job_alive: Callable[[], None] | None = None,
        logs_on_error: bool = True,
    ) -> None:
        name, version = job.name, job.version

        def fail(reason: str, replica: Replica | None) -> NoReturn:
            self._fail(job, reason, replica, logs_on_error)

        def replicas() -> list[ReplicaEndpoint]:
            # Only this deployment's containers: a forced redeploy's predecessors run alongside.
            found = self.containers.find(name, version, job.image_tag or None)
            if not found:
                raise DeployFailed(f"job {name} {version} has no containers on the {self.target} target")
            for replica in found:
                if not replica.running or replica.restart_count:
                    fail(f"job process exited: {_describe_state(replica)}", replica)
            return [ReplicaEndpoint(r.index, r.address, True, r) for r in found]

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

    def _fail(self, job: JobDto, reason: str, replica: Replica | None, logs_on_error: bool) -> NoReturn:
        fail_deploy(reason, replica, self._last_lines if logs_on_error else None)

    def _last_lines(self, replica: Replica, tail: int) -> list[str]:
        return self.containers.logs(replica.container, tail)

    def read_recent_logs(self, job: JobDto, tail: int = 20) -> str:
        """The last `tail` lines of each replica (all when tail=0), prefixed `[replica-i]` when several."""
        return recent_logs(self.containers.find(job.name, job.version), job.image_tag, self._last_lines, tail)
