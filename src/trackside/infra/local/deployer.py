"""JobDeployer of the local target: a job version is a set of local processes (replicas).

A redeploy has no gap (`SideBySideDeployer`): `deploy_beside` starts the new deployment's processes
beside the serving ones, and the lifecycle retires those once the gateways route to the new ones.
Racetrack's `deploy_job` replaces the earlier processes at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trackside.build.artifacts import ArtifactStore
from trackside.domain import JobDto, JobFamilyDto, JobSecrets, JobStatus
from trackside.errors import InvalidInput
from trackside.infra.base import PluginHooks, SideBySideDeployer
from trackside.infra.local.replicas import ReplicaManager

if TYPE_CHECKING:
    from trackside.config import Settings
    from trackside.manifest.model import Manifest

TARGET_NAME = "local"


class LocalJobDeployer(SideBySideDeployer):
    def __init__(self, manager: ReplicaManager, artifacts: ArtifactStore) -> None:
        self.manager = manager
        self.artifacts = artifacts

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
        return self._deploy(manifest, tag, runtime_env_vars, containers_num, runtime_secret_vars, keep_previous=False)

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
        return self._deploy(manifest, tag, runtime_env_vars, containers_num, runtime_secret_vars, keep_previous=True)

    def _deploy(
        self,
        manifest: Manifest,
        tag: str,
        runtime_env_vars: dict[str, str],
        containers_num: int,
        runtime_secret_vars: dict[str, str] | None,
        keep_previous: bool,
    ) -> JobDto:
        name, version = manifest.name, manifest.version
        replicas = manifest.replicas or containers_num  # the manifest validates it (1 to 50)
        artifact = self.artifacts.load(name, version, tag)
        timestamp_text = runtime_env_vars.get("JOB_DEPLOYMENT_TIMESTAMP") or "0"
        try:
            deployment_timestamp = int(timestamp_text)
        except ValueError:
            raise InvalidInput(f"JOB_DEPLOYMENT_TIMESTAMP must be an integer, got {timestamp_text!r}") from None
        views = self.manager.deploy(
            name,
            version,
            tag,
            artifact,
            runtime_env=dict(runtime_env_vars),
            secret_env=dict(runtime_secret_vars or {}),
            count=replicas,
            deployment_timestamp=deployment_timestamp,
            keep_previous=keep_previous,
        )
        addresses = [view.address for view in views]
        return JobDto(
            name=name,
            version=version,
            status=JobStatus.STARTING.value,
            internal_name=addresses[0],
            replica_internal_names=addresses,
            image_tag=tag,
            infrastructure_target=TARGET_NAME,
            job_type_version=artifact.job_type_version or None,
        )

    def retire_previous(self, job_name: str, job_version: str, keep_tag: str) -> None:
        self.manager.retire(job_name, job_version, keep_tag)

    def discard_deployment(self, job_name: str, job_version: str, tag: str) -> None:
        self.manager.discard(job_name, job_version, tag)

    def delete_job(self, job_name: str, job_version: str) -> None:
        self.manager.remove(job_name, job_version)

    def job_exists(self, job_name: str, job_version: str) -> bool:
        return self.manager.exists(job_name, job_version)

    def save_job_secrets(self, job_name: str, job_version: str, job_secrets: JobSecrets) -> None:
        self.manager.secrets.save(job_name, job_version, job_secrets)

    def get_job_secrets(self, job_name: str, job_version: str) -> JobSecrets:
        return self.manager.secrets.get(job_name, job_version)
