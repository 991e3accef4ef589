"""Reprovision: start a job version's workloads again from the build it runs, without rebuilding.

Racetrack's "reprovision" (and, for every lost job, "reconcile"): the stored manifest, the secrets
the target keeps and the current build tag go to the target's `deploy_job` again; the job's row is
switched once the new workloads answer `/live` and `/ready`. Recorded as a deployment (kind
"reprovision") so its phases and errors can be followed like any deploy's.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING

import yaml

from trackside.domain import JobSecrets, JobStatus
from trackside.errors import InvalidInput, NotFound, TracksideError
from trackside.lifecycle import audit, governance, registry
from trackside.lifecycle.audit import EventType
from trackside.lifecycle.deployments import DeploymentProgress, recent_in_progress
from trackside.manifest.load import parse_manifest
from trackside.store.models import Deployment

if TYPE_CHECKING:
    from trackside.lifecycle.deployer import DeployService

log = logging.getLogger(__name__)


def start_reprovision(service: DeployService, name: str, version: str, username: str | None) -> str:
    """Check what can be checked now, record the deployment, and run it on a thread; its id."""
    from datetime import timedelta

    with service.db.session() as session:
        job = registry.get_job(session, name, version)
        if job.version != version:
            raise InvalidInput("reprovision needs the exact version, not an alias")
        manifest_yaml, tag, target_name = job.manifest, job.image_tag, job.infrastructure_target
        if not tag:
            raise InvalidInput(f"job {name} {version} has no build to reprovision: redeploy it")
        if recent_in_progress(session, name, version, timedelta(minutes=1)):
            raise InvalidInput(f"a deployment of job {name} {version} is already in progress")
    target = service.plugins.infrastructure_targets().get(target_name or "")
    if target is None or target.job_deployer is None or target.job_monitor is None:
        raise InvalidInput(f"infrastructure target {target_name!r} of job {name} {version} is not available")
    with service.db.session() as session:
        deployment = Deployment(
            manifest=manifest_yaml,
            job_name=name,
            job_version=version,
            deployed_by=username,
            infrastructure_target=target_name,
            phase="queued",
            kind="reprovision",
        )
        session.add(deployment)
        session.flush()
        deployment_id = deployment.id
    threading.Thread(
        target=_run,
        args=(service, deployment_id, name, version, manifest_yaml, tag, target_name, username),
        name=f"reprovision-{name}-{version}",
        daemon=True,
    ).start()
    return deployment_id


def _run(
    service: DeployService,
    deployment_id: str,
    name: str,
    version: str,
    manifest_yaml: str,
    tag: str,
    target_name: str | None,
    username: str | None,
) -> None:
    target = service.plugins.infrastructure_targets()[target_name or ""]
    deployer, monitor = target.job_deployer, target.job_monitor
    assert deployer is not None and monitor is not None
    secrets = JobSecrets()
    with contextlib.suppress(NotFound):
        secrets = deployer.get_job_secrets(name, version)
    progress = DeploymentProgress(
        service.db, deployment_id, secrets=[*secrets.secret_runtime_env.values(), *secrets.secret_build_env.values()]
    )
    started = time.monotonic()
    try:
        manifest = parse_manifest(yaml.safe_load(manifest_yaml), source="stored manifest")
        progress.log(f"reprovisioning job {name} {version} on {target_name} from build {tag}")
        progress.phase("creating cluster resources")
        timestamp = int(time.time())
        dto = deployer.deploy_job(
            manifest=manifest,
            config=service.settings,
            plugin_engine=service.plugins,
            tag=tag,
            runtime_env_vars=service.runtime_env(manifest, manifest_yaml, timestamp),
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
        with service.db.session() as session:
            row = registry.get_job(session, name, version)
            registry.update_job(
                row,
                status=JobStatus.RUNNING.value,
                internal_name=dto.internal_name,
                replica_internal_names=list(dto.replica_internal_names),
                error=None,
                infrastructure_stats=dict(dto.infrastructure_stats),
            )
            audit.record(
                session, EventType.JOB_REDEPLOYED, username, job_name=name, job_version=version, reprovision=True
            )
        if deployer.overlapping_redeploy:
            deployer.retire_previous(name, version, keep_tag=tag)
        progress.log(f"reprovisioned in {time.monotonic() - started:.2f}s")
        progress.done()
    except Exception as exc:
        message = exc.message if isinstance(exc, TracksideError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, TracksideError):
            log.exception("reprovisioning %s %s failed", name, version)
        progress.failed(f"reprovision failed: {message}")
        with contextlib.suppress(Exception):
            audit.record_in(
                service.db,
                EventType.DEPLOYMENT_FAILED,
                username,
                job_name=name,
                job_version=version,
                deployment_id=deployment_id,
            )


def lost_jobs(service: DeployService) -> list[tuple[str, str]]:
    with service.db.session() as session:
        return [(j.name, j.version) for j in registry.list_jobs(session) if j.status == JobStatus.LOST.value]
