"""The infrastructure target interface: what a target can do, declared as types.

Every target, built-in (`local`, `docker`, `kubernetes`) or from a plugin, is an `InfrastructureTarget`
made of a `JobDeployer`, a `JobMonitor` and a `LogsStreamer`. Those three are `typing.Protocol`s with
Racetrack's method names and arguments, so its plugins' classes satisfy them as they are (no base class
to inherit); a target's optional abilities are declared too:

- `SideBySideDeployer`: the deployer can run a version's new deployment beside the serving one, so the
  lifecycle switches traffic only once the new replicas are ready (a redeploy without a gap). The
  built-in targets declare it by subclassing the protocol; the lifecycle checks it with `isinstance`.
- `ImageBuilder`: the target builds the container images it runs on an engine of its own (a remote
  Docker target). Without one, an `"image"` target's images are built on this host's Docker engine.

`artifact_kind` says what the target runs: `"local"` artifacts (a command in a virtualenv, see
`trackside.build.artifacts`) or container `"image"`s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from trackside.domain import JobDto, JobFamilyDto, JobSecrets
from trackside.errors import InvalidInput

if TYPE_CHECKING:
    from trackside.build.spec import BuildSpec
    from trackside.config import Settings
    from trackside.manifest.model import Manifest

ArtifactKind = Literal["local", "image"]
ARTIFACT_KINDS: tuple[ArtifactKind, ...] = ("local", "image")


class PluginHooks(Protocol):
    """What `deploy_job` gets as `plugin_engine`: the platform's plugin engine, to call other plugins' hooks."""

    def hook_results(self, hook: str, **kwargs: Any) -> list[tuple[Any, Any]]: ...


@runtime_checkable
class JobDeployer(Protocol):
    """Creates and removes a job's workloads, and keeps its secrets (Racetrack's JobDeployer)."""

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
        """Start the job's replicas from the build tagged `tag`, replacing any earlier ones.

        Returns a JobDto with `internal_name`, `replica_internal_names`, `image_tag` and
        `infrastructure_target` set, once the workloads are created; readiness is checked afterwards
        with `JobMonitor.check_job_condition`.
        """
        ...

    def delete_job(self, job_name: str, job_version: str) -> None: ...

    def job_exists(self, job_name: str, job_version: str) -> bool: ...

    def save_job_secrets(self, job_name: str, job_version: str, job_secrets: JobSecrets) -> None: ...

    def get_job_secrets(self, job_name: str, job_version: str) -> JobSecrets: ...


@runtime_checkable
class SideBySideDeployer(JobDeployer, Protocol):
    """A deployer that runs a version's new deployment beside the one serving it.

    The lifecycle calls `deploy_beside` (same arguments as `deploy_job`; `tag` identifies the new
    deployment), waits until its replicas are ready, points the store (so the gateways) at them, waits
    until no gateway routes to the earlier replicas, then calls `retire_previous`. If the new replicas
    never get ready it calls `discard_deployment` instead, and the earlier ones keep serving.
    """

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
        """Start the replicas of deployment `tag`, leaving the version's earlier replicas serving."""
        ...

    def retire_previous(self, job_name: str, job_version: str, keep_tag: str) -> None:
        """Stop (letting in-flight calls finish) and remove the version's deployments other than `keep_tag`."""
        ...

    def discard_deployment(self, job_name: str, job_version: str, tag: str) -> None:
        """Remove the replicas of deployment `tag`, keeping the earlier ones."""
        ...


@runtime_checkable
class JobMonitor(Protocol):
    """Discovers what runs and tells whether a job is operational (Racetrack's JobMonitor)."""

    def list_jobs(self, config: Settings) -> Iterable[JobDto]:
        """Jobs present on this target, with status running / error (probed `/live` and `/ready`).

        While a version runs two deployments side by side, its entry is the deployment that serves
        (the newest whose replicas are all ready), with that deployment's `image_tag`."""
        ...

    def check_job_condition(
        self,
        job: JobDto,
        deployment_timestamp: int = 0,
        on_job_alive: Callable[[], None] | None = None,
        logs_on_error: bool = True,
    ) -> None:
        """Wait until the replicas of `job` (of deployment `job.image_tag`) are live and ready.

        Raise `trackside.errors.DeployFailed` with the reason (and recent logs when `logs_on_error`)
        if they never get there.
        """
        ...

    def read_recent_logs(self, job: JobDto, tail: int = 20) -> str: ...


@runtime_checkable
class LogsStreamer(Protocol):
    """Live log sessions: `on_next_line(session_id, line)` is called for each new line."""

    def create_session(
        self,
        session_id: str,
        resource_properties: dict[str, str],
        on_next_line: Callable[[str, str], None],
    ) -> None: ...

    def close_session(self, session_id: str) -> None: ...


@runtime_checkable
class ImageBuilder(Protocol):
    """Builds (and pushes, when a registry is configured) the container images a target runs."""

    def build_image(self, spec: BuildSpec, settings: Settings) -> str:
        """Build `spec` into an image named from `spec.tag`; the image's name."""
        ...


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
    """A target as the platform uses it. Racetrack's fields first; Trackside's declared abilities after."""

    name: str | None = None
    job_deployer: JobDeployer | None = None
    job_monitor: JobMonitor | None = None
    logs_streamer: LogsStreamer | None = None
    remote_gateway_url: str | None = None
    remote_gateway_token: str | None = None
    artifact_kind: ArtifactKind = "image"
    # Builds this target's images on an engine of its own; None: this host's Docker engine builds them.
    image_builder: ImageBuilder | None = None
    # Optional cleanup the owner calls at shutdown (e.g. stopping local processes).
    close: Callable[[], object] | None = None

    def __post_init__(self) -> None:
        if self.artifact_kind not in ARTIFACT_KINDS:
            raise InvalidInput(
                f"infrastructure target {self.name}: artifact_kind must be one of {', '.join(ARTIFACT_KINDS)}, "
                f"got {self.artifact_kind!r}"
            )

    @property
    def side_by_side(self) -> SideBySideDeployer | None:
        """The deployer, when it can run a new deployment beside the serving one."""
        deployer = self.job_deployer
        return deployer if isinstance(deployer, SideBySideDeployer) else None
