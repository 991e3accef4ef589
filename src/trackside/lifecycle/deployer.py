"""Deploy orchestration: manifest -> build -> infrastructure target -> serving, as named phases.

`DeployService.start_deploy` checks everything it can up front (so bad input is a 4xx at once),
records a Deployment, and runs the rest on a worker thread. A deploy that fails leaves no job
record, no build directory and no process behind; a forced deploy over a running version that
fails leaves that version in `error` rather than deleting it (Racetrack issue #491).
"""

from __future__ import annotations

import logging
import secrets as pysecrets
import shutil
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from trackside.build.artifacts import ArtifactStore
from trackside.build.jobtype import JobType
from trackside.build.targets import build_for_target
from trackside.config import Settings
from trackside.domain import JobDto, JobSecrets, JobStatus
from trackside.errors import AlreadyExists, InvalidInput, NotFound, TracksideError
from trackside.infra.base import InfrastructureTarget
from trackside.lifecycle import governance, registry
from trackside.lifecycle.deployments import DeploymentProgress, recent_in_progress
from trackside.manifest.load import manifest_to_yaml, parse_manifest
from trackside.manifest.model import Manifest
from trackside.manifest.versions import resolve_jobtype_version
from trackside.plugins.engine import PluginEngine
from trackside.store.database import Database
from trackside.store.models import Deployment, Job

log = logging.getLogger(__name__)

TRACING_HEADER = "X-Request-Tracing-Id"


@dataclass
class DeployRequest:
    """Racetrack's deploy body."""

    manifest: dict[str, Any]
    git_credentials: dict[str, str] | None = None
    secret_vars: dict[str, dict[str, str]] | None = None
    build_context: str | None = None
    force: bool = False
    build_flags: list[str] = field(default_factory=list)


@dataclass
class _Plan:
    manifest: Manifest
    manifest_yaml: str
    job_type: JobType
    target: InfrastructureTarget
    request: DeployRequest
    username: str | None
    replacing: bool  # a job row for this version exists (forced deploy or redeploy)
    source_dir: Path | None = None  # redeploy of an uploaded context: reuse the built source


def new_tag() -> str:
    """Racetrack's image tag format, plus a suffix so two deploys in one second differ."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H%M%S") + "-" + pysecrets.token_hex(2)


class DeployService:
    def __init__(self, settings: Settings, db: Database, plugins: PluginEngine, workers: int = 8) -> None:
        self.settings = settings
        self.db = db
        self.plugins = plugins
        self.artifacts = ArtifactStore(settings.data_dir)
        self.cache_dir = settings.data_dir / "cache"
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deploy")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- resolving what a deploy needs -------------------------------------------------------

    def resolve_job_type(self, manifest: Manifest) -> JobType:
        available = self.plugins.job_types()
        name, version = manifest.jobtype_name, manifest.jobtype_version
        versions = [jt.version for jt in available.values() if jt.name == name]
        resolved = resolve_jobtype_version(version, versions) if versions else None
        if resolved is None:
            known = ", ".join(sorted(available)) or "none"
            raise InvalidInput(f"job type {manifest.jobtype!r} is not installed (installed: {known})")
        return available[f"{name}:{resolved}"]

    def resolve_target(self, manifest: Manifest) -> InfrastructureTarget:
        targets = self.plugins.infrastructure_targets()
        name = manifest.infrastructure_target
        if name is None:
            name = next(iter(targets)) if len(targets) == 1 else self.settings.infrastructure_target
        target = targets.get(name)
        if target is None:
            known = ", ".join(sorted(targets)) or "none"
            raise InvalidInput(f"infrastructure target {name!r} is not available (available: {known})")
        return target

    # -- deploy --------------------------------------------------------------------------------

    def start_deploy(self, request: DeployRequest, username: str | None = None) -> str:
        if not isinstance(request.manifest, dict):
            raise InvalidInput("deploy request: field 'manifest' must be an object")
        manifest = parse_manifest(request.manifest, source="manifest")
        unknown_flags = [f for f in request.build_flags if f != "--no-cache"]
        if unknown_flags:
            raise InvalidInput(f"deploy request: unsupported build flags {unknown_flags} (only --no-cache)")
        if request.build_context is None and manifest.git is None:
            raise InvalidInput("manifest: field 'git.remote' is required when no build context is uploaded")
        job_type = self.resolve_job_type(manifest)
        self.plugins.validate_job_manifest(manifest, job_type.full_name)  # a plugin's refusal is a 400
        target = self.resolve_target(manifest)
        with self.db.session() as session:
            existing = registry.find_job(session, manifest.name, manifest.version)
            if existing is not None and not request.force:
                raise AlreadyExists(
                    f"job {manifest.name} version {manifest.version} already exists; versions are immutable:"
                    " bump the version or deploy with --force"
                )
            if (
                existing is None
                and not request.force
                and registry.is_in_trash(session, manifest.name, manifest.version)
            ):
                raise AlreadyExists(
                    f"job {manifest.name} version {manifest.version} was deleted and can't be claimed again;"
                    " bump the version or deploy with --force"
                )
        plan = _Plan(
            manifest, manifest_to_yaml(manifest), job_type, target, request, username, replacing=existing is not None
        )
        return self._submit(plan, kind="deploy")

    def start_redeploy(self, name: str, version: str, username: str | None = None) -> str:
        """Rebuild and restart an existing version from its stored manifest and secrets."""
        with self.db.session() as session:
            job = registry.get_job(session, name, version)
            manifest_yaml, image_tag = job.manifest, job.image_tag
        manifest = parse_manifest(yaml.safe_load(manifest_yaml), source="stored manifest")
        target = self.resolve_target(manifest)
        secrets = target.job_deployer.get_job_secrets(name, version) if target.job_deployer else JobSecrets()
        source_dir = None
        if manifest.git is None or image_tag:
            previous = self.artifacts.build_dir(name, version, image_tag or "") / "src"
            if previous.is_dir():
                source_dir = previous
            elif manifest.git is None:
                raise InvalidInput(f"job {name} {version} has no git remote and its uploaded source is gone")
        request = DeployRequest(
            manifest=yaml.safe_load(manifest_yaml),
            git_credentials=secrets.git_credentials,
            secret_vars={"build_env": secrets.secret_build_env, "runtime_env": secrets.secret_runtime_env},
            force=True,
        )
        plan = _Plan(
            manifest,
            manifest_yaml,
            self.resolve_job_type(manifest),
            target,
            request,
            username,
            replacing=True,
            source_dir=source_dir,
        )
        return self._submit(plan, kind="redeploy")

    def _submit(self, plan: _Plan, kind: str) -> str:
        manifest = plan.manifest
        with self.db.session() as session:
            if recent_in_progress(session, manifest.name, manifest.version, timedelta(minutes=1)):
                raise AlreadyExists(
                    f"a deployment of job {manifest.name} version {manifest.version} is already in progress"
                )
            deployment = Deployment(
                manifest=plan.manifest_yaml,
                job_name=manifest.name,
                job_version=manifest.version,
                deployed_by=plan.username,
                infrastructure_target=plan.target.name,
                phase="queued",
                kind=kind,
            )
            session.add(deployment)
            session.flush()
            deployment_id = deployment.id
        self._pool.submit(self._run, deployment_id, plan)
        return deployment_id

    def _run(self, deployment_id: str, plan: _Plan) -> None:
        secret_vars = plan.request.secret_vars or {}
        secret_values = [
            *secret_vars.get("build_env", {}).values(),
            *secret_vars.get("runtime_env", {}).values(),
            *((plan.request.git_credentials or {}).get("password") or "",),
        ]
        progress = DeploymentProgress(self.db, deployment_id, secrets=list(secret_values))
        manifest = plan.manifest
        tag = new_tag()
        started = time.monotonic()
        created_infra = False
        try:
            for warning in getattr(manifest, "warnings", []) or []:
                progress.warn(warning)
            workspace = self.artifacts.build_dir(manifest.name, manifest.version, tag)
            build_context = plan.request.build_context
            if plan.source_dir is not None:
                shutil.copytree(plan.source_dir, workspace / "src", symlinks=True)
            progress.phase("building")
            built = build_for_target(
                plan.target,
                manifest,
                plan.job_type,
                workspace,
                settings=self.settings,
                tag=tag,
                build_context=build_context,
                git_credentials=plan.request.git_credentials,
                cache_dir=self.cache_dir,
                log=progress.log,
                secret_build_env=dict(secret_vars.get("build_env", {})),
                no_cache="--no-cache" in plan.request.build_flags,
                on_phase=progress.phase,
                source_ready=plan.source_dir is not None,
            )
            if built.artifact is not None:
                self.artifacts.save(manifest.name, manifest.version, tag, built.artifact)
            if built.image_name is not None:
                progress.update(image_name=built.image_name)

            deployer = plan.target.job_deployer
            monitor = plan.target.job_monitor
            if deployer is None or monitor is None:
                raise TracksideError(f"infrastructure target {plan.target.name} cannot deploy jobs")
            progress.phase("creating cluster resources")
            deployer.save_job_secrets(
                manifest.name,
                manifest.version,
                JobSecrets(
                    git_credentials=plan.request.git_credentials,
                    secret_build_env=dict(secret_vars.get("build_env", {})),
                    secret_runtime_env=dict(secret_vars.get("runtime_env", {})),
                ),
            )
            deployment_timestamp = int(time.time())
            family = self._family(manifest.name)
            job_dto = deployer.deploy_job(
                manifest=manifest,
                config=self.settings,
                plugin_engine=self.plugins,
                tag=tag,
                runtime_env_vars=self.runtime_env(manifest, plan.manifest_yaml, deployment_timestamp),
                family=family,
                containers_num=1,
                runtime_secret_vars={
                    **secret_vars.get("runtime_env", {}),
                    # The family's token, for job-to-job calls: a secret, so it travels with the secrets.
                    "AUTH_TOKEN": governance.family_token(self.settings, self.db, manifest.name),
                },
            )
            created_infra = True
            # A target that keeps the earlier replicas serving: the store (so the gateway) points at
            # them until the new ones are ready, then `_retire_previous` switches without a gap.
            overlapping = bool(getattr(deployer, "overlapping_redeploy", False))
            if not (plan.replacing and overlapping):
                self._save_job(plan, job_dto, tag, status=JobStatus.STARTING.value)

            progress.phase("starting Job server")
            monitor.check_job_condition(
                job_dto,
                deployment_timestamp=deployment_timestamp,
                on_job_alive=lambda: progress.phase("initializing Job entrypoint"),
            )
            progress.phase("post-deploy hooks")
            self.plugins.post_job_deploy(
                manifest=manifest, job=job_dto, image_name=tag, deployer_username=plan.username
            )
            self._save_job(plan, job_dto, tag, status=JobStatus.RUNNING.value)
            if overlapping:
                self._retire_previous(plan, tag, progress)
            governance.after_deploy(self.db, deployment_id, manifest, plan.username, first_deploy=not plan.replacing)
            self._remove_old_builds(manifest.name, manifest.version, keep=tag)
            progress.log(f"deployed in {time.monotonic() - started:.2f}s")
            progress.done()
        except Exception as exc:
            message = exc.message if isinstance(exc, TracksideError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, TracksideError):
                log.error("deployment %s failed unexpectedly:\n%s", deployment_id, traceback.format_exc())
            self._roll_back(plan, tag, created_infra, message)
            progress.failed(message)
            governance.after_failed_deploy(self.db, deployment_id, manifest, plan.username)

    def _retire_previous(self, plan: _Plan, tag: str, progress: DeploymentProgress) -> None:
        """Remove the replicas this deployment replaced, once gateways no longer route to them."""
        deployer = plan.target.job_deployer
        assert deployer is not None
        if plan.replacing:
            progress.phase("removing the previous replicas")
            progress.log("the new replicas serve; removing the previous replicas")
            # Gateways cache routes for `gateway_cache_ttl`: wait until none routes to the old replicas.
            time.sleep(self.settings.gateway_cache_ttl + 0.5)
        try:
            deployer.retire_previous(plan.manifest.name, plan.manifest.version, keep_tag=tag)
        except Exception as exc:  # the new replicas serve; say what was left behind
            progress.log(f"warning: removing the previous replicas failed: {exc}")

    def _roll_back(self, plan: _Plan, tag: str, created_infra: bool, error: str) -> None:
        manifest = plan.manifest
        try:
            deployer = plan.target.job_deployer
            if plan.replacing and created_infra and getattr(deployer, "overlapping_redeploy", False):
                assert deployer is not None
                # The previous replicas still serve: only the new, failed ones go.
                deployer.discard_deployment(manifest.name, manifest.version, tag)
            if plan.replacing:
                # Keep the version the user had; mark it so they see why it is not what they deployed.
                with self.db.session() as session:
                    job = registry.find_job(session, manifest.name, manifest.version)
                    if job is not None:
                        registry.update_job(job, status=JobStatus.ERROR.value, error=error)
            else:
                if created_infra and plan.target.job_deployer is not None:
                    plan.target.job_deployer.delete_job(manifest.name, manifest.version)
                with self.db.session() as session:
                    job = registry.find_job(session, manifest.name, manifest.version)
                    if job is not None:
                        session.delete(job)
            if not plan.replacing or not created_infra:
                self.artifacts.remove(manifest.name, manifest.version, tag)
        except Exception:
            log.exception("rolling back the failed deployment of %s %s", manifest.name, manifest.version)

    def _family(self, name: str) -> Any:
        with self.db.session() as session:
            return registry.family_dto(registry.get_or_create_family(session, name))

    def _save_job(self, plan: _Plan, dto: JobDto, tag: str, status: str) -> None:
        with self.db.session() as session:
            job = registry.find_job(session, plan.manifest.name, plan.manifest.version)
            if job is None:
                family = registry.get_or_create_family(session, plan.manifest.name)
                job = Job(
                    family_id=family.id,
                    name=plan.manifest.name,
                    version=plan.manifest.version,
                    manifest=plan.manifest_yaml,
                )
                session.add(job)
            registry.update_job(
                job,
                status=status,
                manifest=plan.manifest_yaml,
                internal_name=dto.internal_name,
                replica_internal_names=list(dto.replica_internal_names),
                image_tag=tag,
                deployed_by=plan.username,
                infrastructure_target=plan.target.name,
                job_type_version=dto.job_type_version or plan.job_type.version,
                error=None,
                infrastructure_stats=dict(dto.infrastructure_stats),
            )

    def _remove_old_builds(self, name: str, version: str, keep: str) -> None:
        root = self.artifacts.root / name / version
        if root.is_dir():
            for child in root.iterdir():
                if child.name != keep:
                    shutil.rmtree(child, ignore_errors=True)

    def runtime_env(self, manifest: Manifest, manifest_yaml: str, deployment_timestamp: int) -> dict[str, str]:
        """What every job process gets (DESIGN.md, "The job contract")."""
        env = {key: "" for key in manifest.build_env or {}}  # build-only values are blanked at runtime
        env.update(manifest.runtime_env or {})
        env.update(self.plugins.runtime_env_vars())
        env.update(
            JOB_NAME=manifest.name,
            JOB_VERSION=manifest.version,
            PUB_URL=self.settings.job_pub_url,
            JOB_DEPLOYMENT_TIMESTAMP=str(deployment_timestamp),
            REQUEST_TRACING_HEADER=TRACING_HEADER,
            JOB_MANIFEST_YAML=manifest_yaml.replace("\n", "\\n"),
        )
        return env

    # -- move ------------------------------------------------------------------------------------

    def move_job(self, name: str, version: str, target_name: str, username: str | None = None) -> JobDto:
        """Take a running version to another infrastructure target without a gap (see lifecycle/move.py)."""
        from trackside.lifecycle.move import move_job

        return move_job(self, name, version, target_name, username)

    # -- delete ----------------------------------------------------------------------------------

    def delete_job(self, name: str, version: str, username: str | None = None) -> None:
        with self.db.session() as session:
            job = registry.get_job(session, name, version)
            if job.version != version:
                raise InvalidInput("delete needs the exact version, not an alias")
            dto = registry.job_to_dto(job, self.settings.pub_url)
            target_name = job.infrastructure_target
        targets = self.plugins.infrastructure_targets()
        target = targets.get(target_name or "")
        if target is not None and target.job_deployer is not None and dto.status != JobStatus.LOST.value:
            target.job_deployer.delete_job(name, version)
        with self.db.session() as session:
            job_row = registry.find_job(session, name, version)
            if job_row is None:
                raise NotFound(f"job {name} version {version} not found")
            registry.move_to_trash(session, job_row, username)
        self.artifacts.remove(name, version)
        self.plugins.post_job_delete(job=dto, username_executor=username)
        governance.after_delete(self.db, name, version, username, dto.deployed_by)
