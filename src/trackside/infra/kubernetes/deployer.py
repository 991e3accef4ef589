"""JobDeployer of a `kubernetes` target: a job version is a Service, and a Deployment per deployment.

`deploy_beside` creates the deployment's Secret (its runtime secrets), the version's Service (kept
across deployments) and a Deployment named after the deployment tag, then waits until the pods are
placed and have addresses (failing at once on an unschedulable pod or an image that can't be pulled),
so the JobDto names every replica (`pod IP:7000`, or the Service's `ClusterIP:7000` when the target's
`job_address` is `service`). Readiness is `JobMonitor.check_job_condition`'s job.

A redeploy has no gap (`SideBySideDeployer`): the new Deployment runs beside the serving one; the
lifecycle switches the gateways to it once it is ready and calls `retire_previous`, which deletes the
earlier Deployments (their pods get SIGTERM and the grace period to finish in-flight calls), or
`discard_deployment` when it never got ready. `delete_job` removes everything the target created for
the version, found by its labels, and nothing else.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from trackside.build.images import image_reference
from trackside.domain import JobDto, JobFamilyDto, JobSecrets, JobStatus
from trackside.errors import DeployFailed, NotFound
from trackside.infra.base import PluginHooks, SideBySideDeployer
from trackside.infra.kubernetes import objects
from trackside.infra.kubernetes.api import KubeApi, KubeError
from trackside.infra.kubernetes.naming import (
    CONTAINER_PORT,
    LABEL_PLATFORM,
    LABEL_TARGET,
    SERVICE_PORT,
    resource_name,
    secrets_name,
    tag_of,
    target_labels,
)
from trackside.infra.kubernetes.objects import SECRET_ENV, JobWorkload
from trackside.infra.kubernetes.pods import PodState
from trackside.infra.kubernetes.workloads import JobWorkloads

if TYPE_CHECKING:
    from trackside.config import Settings
    from trackside.manifest.model import Manifest

PLACEMENT_TIMEOUT_S = 120.0  # pods scheduled and given an address
POLL_S = 0.25


class KubernetesJobDeployer(SideBySideDeployer):
    def __init__(
        self,
        target: str,
        workloads: JobWorkloads,
        job_address: str = "pod",
        pub_url: str = "",
        image_pull_policy: str = "IfNotPresent",
        live_timeout: float = 120.0,
    ) -> None:
        self.target = target
        self.workloads = workloads
        self.job_address = job_address
        self.pub_url = pub_url
        self.image_pull_policy = image_pull_policy
        self.live_timeout = live_timeout

    @property
    def api(self) -> KubeApi:
        return self.workloads.api

    def deploy_job(
        self,
        manifest: Manifest,
        config: Settings,
        plugin_engine: PluginHooks,
        tag: str,
        runtime_env_vars: dict[str, str],
        family: JobFamilyDto,
        containers_num: int = 1,
        runtime_secret_vars: dict[str, str] | None = None,
    ) -> JobDto:
        """Racetrack's deploy: the new Deployment, then the version's earlier ones removed at once."""
        job = self.deploy_beside(
            manifest, config, plugin_engine, tag, runtime_env_vars, family, containers_num, runtime_secret_vars
        )
        self.retire_previous(manifest.name, manifest.version, keep_tag=tag)
        return job

    def workload(
        self,
        manifest: Manifest,
        config: Settings,
        tag: str,
        runtime_env_vars: dict[str, str],
        containers_num: int = 1,
        runtime_secret_vars: dict[str, str] | None = None,
    ) -> JobWorkload:
        """What `deploy_beside` creates, without creating it (the objects are validated in tests)."""
        env = {
            **runtime_env_vars,
            "PORT": str(CONTAINER_PORT),
            "JOB_HOST": "0.0.0.0",
            "JOB_USER_MODULE_HOSTNAME": "localhost",
        }
        if self.pub_url:  # the gateway as seen from inside the cluster
            env["PUB_URL"] = self.pub_url
        secret_env = dict(runtime_secret_vars or {})
        for key in SECRET_ENV:
            if key in env:
                secret_env[key] = env.pop(key)
        for key in secret_env:
            env.pop(key, None)
        resources = manifest.resources
        return JobWorkload(
            platform=self.workloads.platform,
            target=self.target,
            name=manifest.name,
            version=manifest.version,
            tag=tag,
            image=image_reference(config, manifest.name, tag),
            replicas=manifest.replicas or containers_num,
            env=env,
            secret_env=secret_env,
            timestamp=int(runtime_env_vars.get("JOB_DEPLOYMENT_TIMESTAMP") or 0),
            job_type=manifest.jobtype or "",
            memory_min=resources.memory_min_bytes if resources else None,
            memory_max=resources.memory_max_bytes if resources else None,
            cpu_min=resources.cpu_min_cores if resources else None,
            cpu_max=resources.cpu_max_cores if resources else None,
            live_timeout=self.live_timeout,
            image_pull_policy=self.image_pull_policy,
        )

    def deploy_beside(
        self,
        manifest: Manifest,
        config: Settings,
        plugin_engine: PluginHooks,
        tag: str,
        runtime_env_vars: dict[str, str],
        family: JobFamilyDto,
        containers_num: int = 1,
        runtime_secret_vars: dict[str, str] | None = None,
    ) -> JobDto:
        name, version = manifest.name, manifest.version
        workload = self.workload(manifest, config, tag, runtime_env_vars, containers_num, runtime_secret_vars)
        # The version's earlier deployments keep serving: they go in `retire_previous`, once the
        # deploy service has moved traffic to this one. Only a retry of this very build is replaced.
        self.workloads.remove_deployment(name, version, tag, grace_seconds=0)
        try:
            self._apply_owned(objects.runtime_env_secret(workload))
            service = self._ensure_service(name, version)
            self.api.create(objects.deployment(workload))
            pods = self._wait_for_addresses(workload)
        except KubeError as exc:
            self.workloads.remove_deployment(name, version, tag, grace_seconds=0)
            raise DeployFailed(f"job {name} {version} on the {self.target} target: {exc.message}") from None
        except Exception:
            self.workloads.remove_deployment(name, version, tag, grace_seconds=0)
            raise
        addresses = self.addresses(service, pods)
        return JobDto(
            name=name,
            version=version,
            status=JobStatus.STARTING.value,
            internal_name=addresses[0],
            replica_internal_names=addresses,
            image_tag=tag,
            infrastructure_target=self.target,
            job_type_version=(manifest.jobtype or "").partition(":")[2] or None,
            infrastructure_stats={
                "image": workload.image,
                "namespace": self.workloads.namespace,
                "deployment": workload.deployment,
                "service": resource_name(name, version),
                "pods": [pod.name for pod in pods],
            },
        )

    def _ensure_service(self, name: str, version: str) -> dict[str, Any]:
        """The version's Service, created once and kept across its deployments (its address stays)."""
        wanted = objects.service(self.workloads.platform, self.target, name, version, self.job_address == "nodeport")
        current = self.api.find("Service", wanted["metadata"]["name"])
        self._check_owner(current, wanted)
        if current is not None and (current.get("spec") or {}).get("type") == wanted["spec"]["type"]:
            return current
        return self.api.apply(wanted)

    def _apply_owned(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace `obj`, unless an object of that name is another platform's (or target's)."""
        self._check_owner(self.api.find(obj["kind"], obj["metadata"]["name"]), obj)
        return self.api.apply(obj)

    def _check_owner(self, current: dict[str, Any] | None, wanted: dict[str, Any]) -> None:
        if current is None:
            return
        labels = (current.get("metadata") or {}).get("labels") or {}
        mine = wanted["metadata"]["labels"]
        if any(labels.get(key) != mine[key] for key in (LABEL_PLATFORM, LABEL_TARGET)):
            raise DeployFailed(
                f"{wanted['kind']} {wanted['metadata']['name']} already exists in namespace "
                f"{self.workloads.namespace} and was not created by this platform's {self.target} target"
            )

    def addresses(self, service: dict[str, Any], pods: list[PodState]) -> list[str]:
        """The addresses the gateway calls: every pod's, or the Service's (ClusterIP or NodePort)."""
        spec = service.get("spec") or {}
        if self.job_address == "service":
            return [f"{spec.get('clusterIP')}:{SERVICE_PORT}"]
        if self.job_address == "nodeport":
            port = next((p.get("nodePort") for p in spec.get("ports") or [] if p.get("name") == "http"), None)
            return [f"127.0.0.1:{port}"]
        return [pod.address for pod in pods]

    def _wait_for_addresses(self, workload: JobWorkload) -> list[PodState]:
        """The deployment's pods once all are placed and have an IP; DeployFailed if one never will."""
        deadline = time.monotonic() + PLACEMENT_TIMEOUT_S
        while True:
            pods = [p for p in self.workloads.pods_now(workload.name, workload.version, workload.tag) if not p.deleting]
            for pod in pods:
                if pod.unschedulable or pod.waiting_reason in ("InvalidImageName",):
                    raise DeployFailed(f"job {workload.name} {workload.version}: {pod.failure}")
            placed = [p for p in pods if p.ip]
            if len(placed) >= workload.replicas:
                return placed[: workload.replicas]
            if time.monotonic() > deadline:
                states = "; ".join(p.describe() for p in pods) or "no pods were created"
                raise DeployFailed(
                    f"job {workload.name} {workload.version}: {len(placed)} of {workload.replicas} pods got an "
                    f"address within {PLACEMENT_TIMEOUT_S:g}s ({states})"
                )
            time.sleep(POLL_S)

    def retire_previous(self, job_name: str, job_version: str, keep_tag: str) -> None:
        """Delete the version's Deployments other than `keep_tag`'s (their pods get SIGTERM and a grace period)."""
        deployments = self.workloads.objects("Deployment", job_name, job_version)
        tags = {tag_of(d) for d in deployments} - {keep_tag}
        for tag in tags:
            self.workloads.remove_deployment(job_name, job_version, tag)

    def discard_deployment(self, job_name: str, job_version: str, tag: str) -> None:
        self.workloads.remove_deployment(job_name, job_version, tag, grace_seconds=0)

    def delete_job(self, job_name: str, job_version: str) -> None:
        self.workloads.remove_job(job_name, job_version)

    def job_exists(self, job_name: str, job_version: str) -> bool:
        return bool(self.workloads.objects("Deployment", job_name, job_version))

    def save_job_secrets(self, job_name: str, job_version: str, job_secrets: JobSecrets) -> None:
        obj = objects.job_secrets_secret(self.workloads.platform, self.target, job_name, job_version, job_secrets)
        self._apply_owned(obj)

    def get_job_secrets(self, job_name: str, job_version: str) -> JobSecrets:
        found = self.api.find("Secret", secrets_name(job_name, job_version))
        labels = ((found or {}).get("metadata") or {}).get("labels") or {}
        mine = target_labels(self.workloads.platform, self.target)
        if found is None or any(labels.get(key) != mine[key] for key in (LABEL_PLATFORM, LABEL_TARGET)):
            raise NotFound(f"no secrets saved for job {job_name} {job_version} on the {self.target} target")
        return objects.read_job_secrets(found)
