"""Moving a job version from one infrastructure target to another without a gap in service.

The order makes the gap impossible: build for the new target (an image for a container target, a
local artifact for the local one, from the source the current build kept), start the replicas there
and wait until they are ready, then switch the job's row (the gateway routes by it), give the
gateway's routing cache time to expire, and only then remove the old replicas. A move that fails
before the switch removes what it started on the new target and leaves the job where it was.
The move is recorded as a deployment (`kind` "move"), so its build log is there to read.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from typing import TYPE_CHECKING

import yaml

from trackside.build.targets import build_for_target
from trackside.domain import JobDto, JobSecrets, JobStatus
from trackside.errors import InvalidInput, NotFound, TracksideError
from trackside.lifecycle import governance, registry
from trackside.lifecycle.deployments import DeploymentProgress
from trackside.manifest.load import parse_manifest
from trackside.store.models import Deployment

if TYPE_CHECKING:
    from trackside.lifecycle.deployer import DeployService

log = logging.getLogger(__name__)

# Extra wait, beyond the gateway's cache TTL, before the old replicas go.
SWITCH_MARGIN_S = 0.5


def move_job(service: DeployService, name: str, version: str, target_name: str, username: str | None) -> JobDto:
    from trackside.lifecycle.deployer import new_tag

    if not target_name:
        raise InvalidInput("move: field 'infrastructure_target' is required")
    with service.db.session() as session:
        job = registry.get_job(session, name, version)
        if job.version != version:
            raise InvalidInput("move needs the exact version, not an alias")
        manifest_yaml, old_tag, old_target_name = job.manifest, job.image_tag or "", job.infrastructure_target
    targets = service.plugins.infrastructure_targets()
    new_target = targets.get(target_name)
    if new_target is None:
        known = ", ".join(sorted(targets)) or "none"
        raise InvalidInput(f"infrastructure target {target_name!r} is not available (available: {known})")
    if target_name == old_target_name:
        raise InvalidInput(f"job {name} {version} already runs on infrastructure target {target_name}")
    old_target = targets.get(old_target_name or "")
    deployer, monitor = new_target.job_deployer, new_target.job_monitor
    if deployer is None or monitor is None:
        raise InvalidInput(f"infrastructure target {target_name} cannot deploy jobs")

    raw = yaml.safe_load(manifest_yaml)
    raw["infrastructure_target"] = target_name
    manifest = parse_manifest(raw, source="stored manifest")
    moved_yaml = yaml.safe_dump(raw, sort_keys=False)
    job_type = service.resolve_job_type(manifest)
    secrets = JobSecrets()
    if old_target is not None and old_target.job_deployer is not None:
        with contextlib.suppress(NotFound):
            secrets = old_target.job_deployer.get_job_secrets(name, version)

    with service.db.session() as session:
        deployment = Deployment(
            manifest=moved_yaml,
            job_name=name,
            job_version=version,
            deployed_by=username,
            infrastructure_target=target_name,
            phase="queued",
            kind="move",
        )
        session.add(deployment)
        session.flush()
        deployment_id = deployment.id
    progress = DeploymentProgress(
        service.db,
        deployment_id,
        secrets=[
            *secrets.secret_build_env.values(),
            *secrets.secret_runtime_env.values(),
            *((secrets.git_credentials or {}).get("password") or "",),
        ],
    )
    tag = new_tag()
    started = time.monotonic()
    created = False
    try:
        progress.log(f"moving job {name} {version} from {old_target_name} to {target_name}")
        workspace = service.artifacts.build_dir(name, version, tag)
        previous = service.artifacts.build_dir(name, version, old_tag) / "src"
        source_ready = previous.is_dir()
        if source_ready:
            shutil.copytree(previous, workspace / "src", symlinks=True)
        elif manifest.git is None:
            raise InvalidInput(f"job {name} {version} has no git remote and its uploaded source is gone")
        progress.phase("building")
        built = build_for_target(
            new_target,
            manifest,
            job_type,
            workspace,
            settings=service.settings,
            tag=tag,
            build_context=None,
            git_credentials=secrets.git_credentials,
            cache_dir=service.cache_dir,
            log=progress.log,
            secret_build_env=dict(secrets.secret_build_env),
            on_phase=progress.phase,
            source_ready=source_ready,
        )
        if built.artifact is not None:
            service.artifacts.save(name, version, tag, built.artifact)
        if built.image_name is not None:
            progress.update(image_name=built.image_name)

        progress.phase("creating cluster resources")
        deployer.save_job_secrets(name, version, secrets)
        timestamp = int(time.time())
        created = True
        dto = deployer.deploy_job(
            manifest=manifest,
            config=service.settings,
            plugin_engine=service.plugins,
            tag=tag,
            runtime_env_vars=service.runtime_env(manifest, moved_yaml, timestamp),
            family=service._family(name),
            containers_num=1,
            runtime_secret_vars={
                **secrets.secret_runtime_env,
                "AUTH_TOKEN": governance.family_token(service.settings, service.db, name),
            },
        )
        progress.phase("starting Job server")
        monitor.check_job_condition(
            dto, deployment_timestamp=timestamp, on_job_alive=lambda: progress.phase("initializing Job entrypoint")
        )

        progress.phase("switching traffic")
        with service.db.session() as session:
            row = registry.get_job(session, name, version)
            registry.update_job(
                row,
                status=JobStatus.RUNNING.value,
                manifest=moved_yaml,
                internal_name=dto.internal_name,
                replica_internal_names=list(dto.replica_internal_names),
                image_tag=tag,
                infrastructure_target=target_name,
                error=None,
                infrastructure_stats=dict(dto.infrastructure_stats),
            )
        time.sleep(float(getattr(service.settings, "gateway_cache_ttl", 2.0)) + SWITCH_MARGIN_S)
    except Exception as exc:
        message = exc.message if isinstance(exc, TracksideError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, TracksideError):
            log.exception("moving %s %s to %s failed", name, version, target_name)
        if created:
            try:
                deployer.delete_job(name, version)
            except Exception:
                log.exception("removing %s %s from %s after a failed move", name, version, target_name)
        service.artifacts.remove(name, version, tag)
        progress.failed(f"move to {target_name} failed: {message}")
        if isinstance(exc, TracksideError):
            raise type(exc)(f"move to {target_name} failed: {message}") from exc
        raise

    progress.phase("removing the old replicas")
    if old_target is not None and old_target.job_deployer is not None:
        try:
            old_target.job_deployer.delete_job(name, version)
        except Exception as exc:  # the job serves from the new target; say what was left behind
            progress.log(f"warning: removing the old replicas from {old_target_name} failed: {exc}")
    if old_tag and old_tag != tag:
        service.artifacts.remove(name, version, old_tag)
    progress.log(f"moved in {time.monotonic() - started:.2f}s")
    progress.done()
    with service.db.session() as session:
        return registry.job_to_dto(registry.get_job(session, name, version), service.settings.pub_url)
