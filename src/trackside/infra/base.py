"""The infrastructure target interface (seed 002, "Developing plugins").

Every target, built-in (`local`, `docker`, `kubernetes`) or from a plugin, is an
`InfrastructureTarget` made of a `JobDeployer`, a `JobMonitor` and a `LogsStreamer`. Method names
and arguments follow Racetrack's so that its plugins port over with few changes; arguments a target
does not need may be ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trackside.domain import JobDto, JobFamilyDto, JobSecrets
from trackside.errors import InvalidInput

if TYPE_CHECKING:
    from trackside.config import Settings
    from trackside.manifest.model import Manifest
    from trackside.plugins.engine import PluginEngine


class JobDeployer:
    """Creates and removes a job's workloads, and keeps its secrets."""

    # True for a target whose `deploy_job` leaves the version's earlier replicas serving beside the new
    # ones (a forced redeploy without a gap): the deploy service then switches traffic once the new
    # replicas are ready and calls `retire_previous`, or `discard_deployment` if they never get there.
    overlapping_redeploy: bool = False

    def deploy_job(
        self,
        manifest: Manifest,
        config: Settings,
        plugin_engine: PluginEngine,
        tag: str,
        runtime_env_vars: dict[str, str],
        family: JobFamilyDto,
        containers_num: int = 1,
        runtime_secret_vars: dict[str, str] | None = None,
    ) -> JobDto:
        """Start (or replace) the job's replicas from the build tagged `tag`.

        Returns a JobDto with `internal_name`, `replica_internal_names`, `image_tag` and
        `infrastructure_target` set. Returns once the workloads are created; readiness is checked
        afterwards with `JobMonitor.check_job_condition`.
        """
        raise NotImplementedError

    def retire_previous(self, job_name: str, job_version: str, keep_tag: str) -> None:
        """Remove the version's replicas from deployments other than `keep_tag` (traffic has left them)."""

    def discard_deployment(self, job_name: str, job_version: str, tag: str) -> None:
        """Remove the replicas of deployment `tag` (a failed forced redeploy), keeping the earlier ones."""

    def delete_job(self, job_name: str, job_version: str) -> None:
        raise NotImplementedError

    def job_exists(self, job_name: str, job_version: str) -> bool:
        raise NotImplementedError

    def save_job_secrets(self, job_name: str, job_version: str, job_secrets: JobSecrets) -> None:
        raise NotImplementedError

    def get_job_secrets(self, job_name: str, job_version: str) -> JobSecrets:
        raise NotImplementedError


class JobMonitor:
    """Discovers what runs and tells whether a job is operational."""

    def list_jobs(self, config: Settings) -> Iterable[JobDto]:
        """Jobs present on this target, with status running / error (probed `/live` and `/ready`)."""
        raise NotImplementedError

    def check_job_condition(
        self,
        job: JobDto,
        deployment_timestamp: int = 0,
        on_job_alive: Callable[[], None] | None = None,
        logs_on_error: bool = True,
    ) -> None:
        """Wait until the job is live (matching `deployment_timestamp` unless 0) and ready.

        Raise `trackside.errors.DeployFailed` with the reason (and recent logs when
        `logs_on_error`) if it never gets there.
        """
        raise NotImplementedError

    def read_recent_logs(self, job: JobDto, tail: int = 20) -> str:
        raise NotImplementedError


class LogsStreamer:
    """Live log sessions: `on_next_line(session_id, line)` is called for each new line."""

    def create_session(
        self,
        session_id: str,
        resource_properties: dict[str, str],
        on_next_line: Callable[[str, str], None],
    ) -> None:
        raise NotImplementedError

    def close_session(self, session_id: str) -> None:
        raise NotImplementedError


def session_job(resource_properties: dict[str, str]) -> tuple[str, str, int]:
    """(job name, version, tail) of a logs session's `resource_properties`, or a clear InvalidInput."""
    name = resource_properties.get("job_name")
    version = resource_properties.get("job_version")
    if not name or not version:
        raise InvalidInput("logs session: resource_properties need job_name and job_version")
    try:
        tail = int(resource_properties.get("tail", 20))
    except (TypeError, ValueError):
        given = resource_properties.get("tail")
        raise InvalidInput(f"logs session: tail must be an integer, got {given!r}") from None
    return name, version, tail


@dataclass
class InfrastructureTarget:
    name: str | None = None
    job_deployer: JobDeployer | None = None
    job_monitor: JobMonitor | None = None
    logs_streamer: LogsStreamer | None = None
    remote_gateway_url: str | None = None
    remote_gateway_token: str | None = None
    # What this target runs: "local" artifacts (a command in a virtualenv) or "image" (a container
    # image). The builder produces the kind the chosen target asks for.
    artifact_kind: str = "image"
    # Optional cleanup the owner calls at shutdown (e.g. stopping local processes).
    close: Callable[[], Any] | None = None
