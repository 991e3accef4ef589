"""The deploy service: what the lifecycle API asks for (deploy, redeploy, reprovision, move, delete).

Each request is checked completely up front, so bad input is a 4xx at once: the manifest, the job
type, the target, the version's existence. Then it becomes an `Order` for the deploy pipeline
(`trackside.lifecycle.pipeline`), which records a Deployment and runs the plan of its kind. A deploy
that fails leaves no job record, no build and no process behind; a forced deploy, redeploy or move
that fails leaves the version serving as it was.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import yaml

from trackside.build.artifacts import ArtifactStore
from trackside.build.jobtype import JobType
from trackside.config import Settings
from trackside.domain import JobDto, JobSecrets, JobStatus
from trackside.errors import AlreadyExists, InvalidInput, NotFound
from trackside.infra.base import InfrastructureTarget
from trackside.lifecycle import governance, job_versions
from trackside.lifecycle.pipeline import DeployPipeline, Kind, Order, Previous, stored_manifest
from trackside.manifest.load import manifest_to_yaml, parse_manifest
from trackside.manifest.model import Manifest
from trackside.manifest.versions import resolve_jobtype_version
from trackside.plugins.engine import PluginEngine
from trackside.store.database import Database


@dataclass
class DeployRequest:
    """Racetrack's deploy body."""

    manifest: dict[str, Any]
    git_credentials: dict[str, str] | None = None
    secret_vars: dict[str, dict[str, str]] | None = None
    build_context: str | None = None
    force: bool = False
    build_flags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Current:
    """A job version as the store has it, for a change of what serves it."""

    manifest_yaml: str
    tag: str
    target_name: str
    status: str
    source_version: str | None = None

    @property
    def previous(self) -> Previous:
        return Previous(self.tag, self.target_name)


class DeployService:
    def __init__(self, settings: Settings, db: Database, plugins: PluginEngine, workers: int = 8) -> None:
        self.settings = settings
        self.db = db
        self.plugins = plugins
        self.artifacts = ArtifactStore(settings.data_dir)
        self.pipeline = DeployPipeline(settings, db, plugins, self.artifacts, workers=workers)

    def start(self) -> None:
        """This lifecycle worker's share of the deploys on the store: settle what stopped workers left
        in progress, then keep its leases and watch for other workers' abandoned deployments."""
        self.pipeline.settle_at_start()
        self.pipeline.start_lease_loop()

    def close(self) -> None:
        self.pipeline.close()

    # -- resolving what a deploy needs -------------------------------------------------------

    def resolve_job_type(self, manifest: Manifest, target: InfrastructureTarget | None = None) -> JobType:
        """The job type version the manifest names; an alias (`latest`, `2.*`) resolves among the
        versions that can build for `target` only (installing Racetrack's python3 plugin, whose
        versions build images only, leaves `python3:latest` on the local target as it was)."""
        available = self.plugins.job_types()
        name, version = manifest.jobtype_name, manifest.jobtype_version
        candidates = [jt for jt in available.values() if jt.name == name]
        resolved = resolve_jobtype_version(version, [jt.version for jt in candidates]) if candidates else None
        if resolved is None:
            known = ", ".join(sorted(available)) or "none"
            raise InvalidInput(f"job type {manifest.jobtype!r} is not installed (installed: {known})")
        if target is not None and resolved != version:  # an alias: among the versions that build for target
            buildable = [jt.version for jt in candidates if jt.builds_for(target.artifact_kind)]
            resolved = resolve_jobtype_version(version, buildable) if buildable else None
            if resolved is None:
                what = "a command for this host" if target.artifact_kind == "local" else "container images"
                raise InvalidInput(
                    f"job type {manifest.jobtype!r}: no installed version that matches it can build {what} for "
                    f"infrastructure target {target.name} (installed: "
                    f"{', '.join(sorted(jt.full_name for jt in candidates))})"
                )
        return available[f"{name}:{resolved}"]

    def resolve_target(self, manifest: Manifest) -> InfrastructureTarget:
        return self.choose_target(manifest)[0]

    def choose_target(self, manifest: Manifest) -> tuple[InfrastructureTarget, str]:
        """The target a version deploys to, and why when the manifest names none and no version of its
        job type builds for the default: a job type that builds only images goes to the default image
        target (docker when present), as the deployment's log and warnings then say."""
        targets = self.plugins.infrastructure_targets()
        name = manifest.infrastructure_target
        if name is not None:
            return self._target(name, targets), ""
        name = next(iter(targets)) if len(targets) == 1 else self.settings.infrastructure_target
        default = targets.get(name)
        if default is None or self._builds_for(manifest, default):
            return self._target(name, targets), ""
        image_targets = [
            t
            for t in targets.values()
            if t.artifact_kind == "image" and t.job_deployer is not None and self._builds_for(manifest, t)
        ]
        if not image_targets:
            known = ", ".join(sorted(targets)) or "none"
            raise InvalidInput(
                f"job type {manifest.jobtype!r} builds only container images, and no infrastructure target here "
                f"runs them (available: {known}); name one in the manifest's infrastructure_target"
            )
        chosen = targets.get("docker") if targets.get("docker") in image_targets else image_targets[0]
        assert chosen is not None
        job_type = self.resolve_job_type(manifest, chosen)
        return chosen, (
            f"the manifest names no infrastructure_target and job type {job_type.full_name} builds only container "
            f"images: deploying to the image target {chosen.name} instead of the default {name}"
        )

    def _builds_for(self, manifest: Manifest, target: InfrastructureTarget) -> bool:
        """Whether a version of the manifest's job type that its `jobtype` matches builds for `target`."""
        versions = [
            jt.version
            for jt in self.plugins.job_types().values()
            if jt.name == manifest.jobtype_name and jt.builds_for(target.artifact_kind)
        ]
        return bool(versions) and resolve_jobtype_version(manifest.jobtype_version, versions) is not None

    @staticmethod
    def _target(name: str, targets: dict[str, InfrastructureTarget]) -> InfrastructureTarget:
        target = targets.get(name)
        if target is None:
            known = ", ".join(sorted(targets)) or "none"
            raise InvalidInput(f"infrastructure target {name!r} is not available (available: {known})")
        return target

    def _current(self, name: str, version: str, action: str) -> _Current:
        with self.db.session() as session:
            job = job_versions.get_job(session, name, version)
            if job.version != version:
                raise InvalidInput(f"{action} needs the exact version, not an alias")
            return _Current(
                job.manifest, job.image_tag or "", job.infrastructure_target or "", job.status, job.source_version
            )

    def _secrets(self, target_name: str, name: str, version: str) -> JobSecrets:
        """The version's secrets, as its target keeps them (Racetrack: secrets come from the infrastructure)."""
        target = self.plugins.infrastructure_targets().get(target_name)
        if target is None or target.job_deployer is None:
            return JobSecrets()
        with contextlib.suppress(NotFound):
            return target.job_deployer.get_job_secrets(name, version)
        return JobSecrets()

    def _reusable_source(
        self, name: str, version: str, tag: str, manifest: Manifest, source_version: str | None = None
    ) -> str | None:
        """`tag` when its build kept the source (a redeploy or move reuses it), else None (fetch from git).

        A version built from an uploaded context is rebuilt from that upload only: its git remote's
        head is another source."""
        if tag and (self.artifacts.build_dir(name, version, tag) / "src").is_dir():
            return tag
        if manifest.git is None:
            raise InvalidInput(f"job {name} {version} has no git remote and its uploaded source is gone")
        if source_version and source_version.startswith("sha256:"):
            raise InvalidInput(
                f"job {name} {version} was built from an uploaded build context ({source_version}) that is no "
                "longer kept; deploy it again from its directory"
            )
        return None

    # -- deploy, redeploy, reprovision, move ---------------------------------------------------

    def start_deploy(self, request: DeployRequest, username: str | None = None) -> str:
        if not isinstance(request.manifest, dict):
            raise InvalidInput("deploy request: field 'manifest' must be an object")
        manifest = parse_manifest(request.manifest, source="manifest")
        unknown_flags = [f for f in request.build_flags if f != "--no-cache"]
        if unknown_flags:
            raise InvalidInput(f"deploy request: unsupported build flags {unknown_flags} (only --no-cache)")
        if request.build_context is None and manifest.git is None:
            raise InvalidInput("manifest: field 'git.remote' is required when no build context is uploaded")
        # The target is chosen for the job type (an images-only type goes to an image target), then the
        # job type's version among those that build for that target.
        self.resolve_job_type(manifest)  # an unknown job type is named as such, whatever the target
        target, target_notice = self.choose_target(manifest)
        job_type = self.resolve_job_type(manifest, target)
        self.plugins.validate_job_manifest(manifest, job_type.full_name)  # a plugin's refusal is a 400
        with self.db.session() as session:
            existing = job_versions.find_job(session, manifest.name, manifest.version)
            if existing is not None and not request.force:
                raise AlreadyExists(
                    f"job {manifest.name} version {manifest.version} already exists; versions are immutable:"
                    " bump the version or deploy with --force"
                )
            if (
                existing is None
                and not request.force
                and job_versions.is_in_trash(session, manifest.name, manifest.version)
            ):
                raise AlreadyExists(
                    f"job {manifest.name} version {manifest.version} was deleted and can't be claimed again;"
                    " bump the version or deploy with --force"
                )
            previous = (
                Previous(existing.image_tag or "", existing.infrastructure_target or "")
                if existing is not None
                else None
            )
        secret_vars = request.secret_vars or {}
        order = Order(
            kind="deploy",
            manifest=manifest,
            manifest_yaml=manifest_to_yaml(manifest),
            target=target,
            username=username,
            previous=previous,
            job_type=job_type,
            secrets=JobSecrets(
                git_credentials=request.git_credentials,
                secret_build_env=dict(secret_vars.get("build_env", {})),
                secret_runtime_env=dict(secret_vars.get("runtime_env", {})),
            ),
            build_context=request.build_context,
            no_cache="--no-cache" in request.build_flags,
            notices=(target_notice,) if target_notice else (),
        )
        return self.pipeline.start(order)

    def start_build(self, request: DeployRequest, username: str | None = None) -> str:
        """Build the job's image and leave it in the registry, deploying nothing (`racetrack run-local`).

        The image is built for the manifest's target when that runs images, else for the default
        image target (docker when present); the deployment reports its `image_name` when done."""
        if not isinstance(request.manifest, dict):
            raise InvalidInput("build request: field 'manifest' must be an object")
        manifest = parse_manifest(request.manifest, source="manifest")
        unknown_flags = [f for f in request.build_flags if f != "--no-cache"]
        if unknown_flags:
            raise InvalidInput(f"build request: unsupported build flags {unknown_flags} (only --no-cache)")
        if request.build_context is None and manifest.git is None:
            raise InvalidInput("manifest: field 'git.remote' is required when no build context is uploaded")
        job_type = self.resolve_job_type(manifest)
        if not job_type.images:
            raise InvalidInput(f"job type {job_type.full_name} builds no container image, so it can't run locally")
        self.plugins.validate_job_manifest(manifest, job_type.full_name)
        secret_vars = request.secret_vars or {}
        order = Order(
            kind="build",
            manifest=manifest,
            manifest_yaml=manifest_to_yaml(manifest),
            target=self._image_target(manifest),
            username=username,
            job_type=job_type,
            secrets=JobSecrets(
                git_credentials=request.git_credentials,
                secret_build_env=dict(secret_vars.get("build_env", {})),
            ),
            build_context=request.build_context,
            no_cache="--no-cache" in request.build_flags,
        )
        return self.pipeline.start(order)

    def _image_target(self, manifest: Manifest) -> InfrastructureTarget:
        targets = self.plugins.infrastructure_targets()
        if manifest.infrastructure_target is not None:
            named = self._target(manifest.infrastructure_target, targets)
            if named.artifact_kind == "image":
                return named
        images = [t for t in targets.values() if t.artifact_kind == "image"]
        if not images:
            known = ", ".join(sorted(targets)) or "none"
            raise InvalidInput(
                f"building job {manifest.name} needs an infrastructure target that runs container images, and none "
                f"is here (available: {known})"
            )
        docker = targets.get("docker")
        return docker if docker is not None and docker in images else images[0]

    def start_redeploy(self, name: str, version: str, username: str | None = None) -> str:
        """Rebuild and restart an existing version from its stored manifest and secrets."""
        return self.pipeline.start(self._rebuild_order("redeploy", name, version, username))

    def start_reprovision(self, name: str, version: str, username: str | None = None) -> str:
        """New workloads for an existing version from its existing build (nothing is rebuilt)."""
        current = self._current(name, version, "reprovision")
        if not current.tag:
            raise InvalidInput(f"job {name} {version} has no build to reprovision from; redeploy it")
        manifest = stored_manifest(current.manifest_yaml)
        target = self._target(current.target_name, self.plugins.infrastructure_targets())
        if target.artifact_kind == "local" and not (self.artifacts.build_dir(name, version, current.tag)).is_dir():
            raise InvalidInput(f"job {name} {version}: its build {current.tag} is gone; redeploy it")
        order = Order(
            kind="reprovision",
            manifest=manifest,
            manifest_yaml=current.manifest_yaml,
            target=target,
            username=username,
            previous=current.previous,
            secrets=self._secrets(current.target_name, name, version),
            reuse_build=current.tag,
        )
        return self.pipeline.start(order)

    def _rebuild_order(self, kind: Kind, name: str, version: str, username: str | None) -> Order:
        current = self._current(name, version, kind)
        manifest = stored_manifest(current.manifest_yaml)
        target, notice = self.choose_target(manifest)
        job_type = self.resolve_job_type(manifest, target)
        return Order(
            kind=kind,
            manifest=manifest,
            manifest_yaml=current.manifest_yaml,
            target=target,
            notices=(notice,) if notice else (),
            username=username,
            previous=current.previous,
            job_type=job_type,
            secrets=self._secrets(current.target_name, name, version),
            reuse_source_of=self._reusable_source(name, version, current.tag, manifest, current.source_version),
            source_version=current.source_version,
        )

    def move_job(self, name: str, version: str, target_name: str, username: str | None = None) -> JobDto:
        """Take a running version to another infrastructure target without a gap (synchronous, as Racetrack's)."""
        if not target_name:
            raise InvalidInput("move: field 'infrastructure_target' is required")
        current = self._current(name, version, "move")
        target = self._target(target_name, self.plugins.infrastructure_targets())
        if target_name == current.target_name:
            raise InvalidInput(f"job {name} {version} already runs on infrastructure target {target_name}")
        if target.job_deployer is None or target.job_monitor is None:
            raise InvalidInput(f"infrastructure target {target_name} cannot deploy jobs")
        raw = yaml.safe_load(current.manifest_yaml)
        raw["infrastructure_target"] = target_name
        manifest = parse_manifest(raw, source="stored manifest")
        order = Order(
            kind="move",
            manifest=manifest,
            manifest_yaml=yaml.safe_dump(raw, sort_keys=False),
            target=target,
            username=username,
            previous=current.previous,
            job_type=self.resolve_job_type(manifest, target),
            secrets=self._secrets(current.target_name, name, version),
            reuse_source_of=self._reusable_source(name, version, current.tag, manifest, current.source_version),
            source_version=current.source_version,
        )
        run = self.pipeline.run_now(order)
        if run.error is not None:
            raise run.error
        with self.db.session() as session:
            return job_versions.job_to_dto(job_versions.get_job(session, name, version), self.settings.pub_url)

    def runtime_env(self, manifest: Manifest, manifest_yaml: str, deployment_timestamp: int) -> dict[str, str]:
        """What every job process gets (the job contract)."""
        return self.pipeline.runtime_env(manifest, manifest_yaml, deployment_timestamp)

    # -- delete ----------------------------------------------------------------------------------

    def delete_job(self, name: str, version: str, username: str | None = None) -> None:
        with self.db.session() as session:
            job = job_versions.get_job(session, name, version)
            if job.version != version:
                raise InvalidInput("delete needs the exact version, not an alias")
            dto = job_versions.job_to_dto(job, self.settings.pub_url)
            target_name = job.infrastructure_target
        targets = self.plugins.infrastructure_targets()
        target = targets.get(target_name or "")
        if target is not None and target.job_deployer is not None and dto.status != JobStatus.LOST.value:
            target.job_deployer.delete_job(name, version)
        with self.db.session() as session:
            job_row = job_versions.find_job(session, name, version)
            if job_row is None:
                raise NotFound(f"job {name} version {version} not found")
            job_versions.move_to_trash(session, job_row, username)
        self.artifacts.remove(name, version)
        self.plugins.post_job_delete(job=dto, username_executor=username)
        governance.after_delete(self.db, name, version, username, dto.deployed_by)


__all__ = ["DeployRequest", "DeployService"]
