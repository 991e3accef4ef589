"""JobMonitor of a `kubernetes` target: what runs (the pod watch), whether it serves, its recent output.

`list_jobs` answers from the pod watch (list + watch, `trackside.infra.kubernetes.watch`): a version's
status is its serving deployment's pods' (the kubelet probes `/live` and `/ready`), its error says which
pod is not ready and why (`CrashLoopBackOff`, `ImagePullBackOff`, unschedulable...). With pod
addresses the platform also reads each ready pod's `/metrics` for the last call time.

`check_job_condition` waits for a fresh deployment the way the other targets do (every replica live
with this deployment's timestamp, then ready; probed directly when the pods are reachable, else from
the pods' Ready conditions) and fails at once, with the pod's last lines, on a state that never gets
better by itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, NoReturn

from trackside.domain import JobDto, JobStatus
from trackside.errors import DeployFailed
from trackside.infra.base import JobMonitor
from trackside.infra.generations import by_tag, serving
from trackside.infra.kubernetes.naming import LABEL_NAME, SERVICE_PORT, version_of
from trackside.infra.kubernetes.pods import PodState
from trackside.infra.kubernetes.workloads import JobWorkloads
from trackside.infra.probes import last_call_timestamp, probe
from trackside.infra.readiness import ReplicaEndpoint, split_address, wait_until_ready
from trackside.infra.recent_logs import fail_deploy, recent_logs

if TYPE_CHECKING:
    from trackside.config import Settings

FIRST_POLL_DELAY = 0.1
MAX_POLL_DELAY = 0.5
MAX_PROBE_THREADS = 16


def _last_call(pod: PodState) -> int | None:
    host, port = split_address(pod.address)
    metrics = probe(host, port, "/metrics")
    return last_call_timestamp(metrics.body) if metrics.ok else None


class KubernetesJobMonitor(JobMonitor):
    def __init__(
        self,
        target: str,
        workloads: JobWorkloads,
        live_timeout: float,
        ready_timeout: float,
        job_address: str = "pod",
    ) -> None:
        self.target = target
        self.workloads = workloads
        self.live_timeout = live_timeout
        self.ready_timeout = ready_timeout
        self.job_address = job_address

    @property
    def probes_pods(self) -> bool:
        """Whether the platform calls pods itself (their addresses are reachable from here)."""
        return self.job_address == "pod"

    def list_jobs(self, config: Settings) -> list[JobDto]:
        pods = [p for p in self.workloads.pods() if not p.deleting]
        if not pods:
            return []
        versions: dict[tuple[str, str], list[PodState]] = {}
        for pod in pods:
            versions.setdefault((pod.job_name, pod.version), []).append(pod)
        services = self._service_addresses() if not self.probes_pods else {}
        ready_pods = [p for p in pods if p.ready and p.ip]
        calls: dict[str, int | None] = {}
        if self.probes_pods and ready_pods:
            with ThreadPoolExecutor(max_workers=min(MAX_PROBE_THREADS, len(ready_pods))) as pool:
                calls = dict(zip((p.name for p in ready_pods), pool.map(_last_call, ready_pods), strict=True))
        result = []
        for (name, version), members_all in versions.items():
            members = serving(
                by_tag(members_all, lambda p: p.tag),
                started=lambda p: (p.timestamp, p.created),
                ready=lambda p: p.ready,
            )
            errors = [p.describe() for p in members if not p.ready]
            ready = [p.address for p in members if p.ready and p.ip]
            first = members[0]
            if not self.probes_pods:
                address = services.get((name, version), "")
                ready = [address] if ready and address else []
            last_calls = [c for c in (calls.get(p.name) for p in members) if c]
            result.append(
                JobDto(
                    name=name,
                    version=version,
                    status=JobStatus.ERROR.value if errors else JobStatus.RUNNING.value,
                    error="\n".join(errors) if errors else None,
                    internal_name=ready[0] if ready else (first.address or None),
                    replica_internal_names=ready,
                    image_tag=first.tag,
                    infrastructure_target=self.target,
                    job_type_version=first.job_type_version.partition(":")[2] or None,
                    last_call_time=max(last_calls) if last_calls else None,
                    infrastructure_stats={
                        "replicas": len(members),
                        "restarts": sum(p.restarts for p in members),
                        "pods": [p.name for p in members],
                        "namespace": self.workloads.namespace,
                    },
                )
            )
        return result

    def _service_addresses(self) -> dict[tuple[str, str], str]:
        addresses: dict[tuple[str, str], str] = {}
        for service in self.workloads.objects("Service"):
            labels = service["metadata"].get("labels") or {}
            spec = service.get("spec") or {}
            key = (str(labels.get(LABEL_NAME)), version_of(service))
            if self.job_address == "nodeport":
                port = next((p.get("nodePort") for p in spec.get("ports") or []), None)
                addresses[key] = f"127.0.0.1:{port}"
            else:
                addresses[key] = f"{spec.get('clusterIP')}:{SERVICE_PORT}"
        return addresses

    def check_job_condition(
        self,
        job: JobDto,
        deployment_timestamp: int = 0,
        on_job_alive: Callable[[], None] | None = None,
        logs_on_error: bool = True,
    ) -> None:
        name, version, tag = job.name, job.version, job.image_tag or None

        def fail(reason: str, pod: PodState | None) -> NoReturn:
            self._fail(job, reason, pod, logs_on_error)

        def current() -> list[PodState]:
            pods = [p for p in self.workloads.pods_now(name, version, tag) if not p.deleting]
            if not pods:
                raise DeployFailed(f"job {name} {version} has no pods on the {self.target} target")
            for pod in pods:
                if pod.failure:
                    fail(f"job {name} {version} did not start: {pod.failure}", pod)
            return pods

        if not self.probes_pods:
            self._wait_by_conditions(job, current, fail, on_job_alive)
            return

        def replicas() -> list[ReplicaEndpoint]:
            return [ReplicaEndpoint(p.index, p.address, p.running, p) for p in current()]

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
        # The kubelet's readiness probe agrees too (the supervisor reports from it), then the addresses:
        # pods replaced while it waited have new ones, and the job routes to the ready pods.
        self._wait_by_conditions(job, current, fail, None)
        ready = [p.address for p in current() if p.ready and p.ip]
        if ready and set(ready) != set(job.replica_internal_names):
            job.replica_internal_names = ready
            job.internal_name = ready[0]

    def _wait_by_conditions(
        self,
        job: JobDto,
        current: Callable[[], list[PodState]],
        fail: Callable[[str, PodState | None], NoReturn],
        on_job_alive: Callable[[], None] | None,
    ) -> None:
        """Wait on the pods' own state (the kubelet's probes) when the platform can't call them."""
        started = time.monotonic()
        alive_said = False
        delay = FIRST_POLL_DELAY
        while True:
            pods = current()
            if not alive_said and all(p.running for p in pods):
                alive_said = True
                if on_job_alive is not None:
                    on_job_alive()
            if all(p.ready for p in pods):
                return
            if time.monotonic() - started > self.live_timeout + self.ready_timeout:
                waiting = next(p for p in pods if not p.ready)
                fail(f"job {job.name} {job.version} did not become ready ({waiting.describe()})", waiting)
            time.sleep(delay)
            delay = min(MAX_POLL_DELAY, delay * 1.5)

    def _fail(self, job: JobDto, reason: str, pod: PodState | None, logs_on_error: bool) -> NoReturn:
        fail_deploy(reason, pod, self._last_lines if logs_on_error else None)

    def _last_lines(self, pod: PodState, tail: int) -> list[str]:
        return self.workloads.logs(pod.name, tail)

    def read_recent_logs(self, job: JobDto, tail: int = 20) -> str:
        """The last `tail` lines of each pod (all when tail=0), prefixed `[replica-i]` when several."""
        return recent_logs(self.workloads.pods_now(job.name, job.version), job.image_tag, self._last_lines, tail)
