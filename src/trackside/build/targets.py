"""One entry point for every build: what gets built depends on what the chosen target runs.

A target with `artifact_kind == "local"` gets a local artifact (a command in a virtualenv); one with
`"image"` gets a container image built on the target's own Docker engine (`target.docker_engine`, or
the default engine for targets without one, e.g. a Kubernetes target that pulls from the registry).
The lifecycle's deploy and move go through here, so neither needs to know the difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trackside.build.artifacts import LocalArtifact
from trackside.build.builder import build_job
from trackside.build.images import build_job_image
from trackside.build.jobtype import JobType
from trackside.errors import BuildFailed
from trackside.infra.docker.engine import DockerEngine

if TYPE_CHECKING:
    from trackside.infra.base import InfrastructureTarget


@dataclass
class BuildResult:
    artifact: LocalArtifact | None = None  # for "local" targets
    image_name: str | None = None  # for "image" targets


def build_for_target(
    target: InfrastructureTarget,
    manifest: Any,
    job_type: JobType,
    workspace_root: Path,
    *,
    settings: Any,
    tag: str,
    build_context: str | None,
    git_credentials: dict[str, Any] | None,
    cache_dir: Path,
    log: Callable[[str], None],
    secret_build_env: dict[str, str] | None = None,
    no_cache: bool = False,
    on_phase: Callable[[str], None] | None = None,
    source_ready: bool = False,
) -> BuildResult:
    kind = getattr(target, "artifact_kind", "image")
    if kind == "local":
        artifact = build_job(
            manifest,
            job_type,
            workspace_root,
            build_context=build_context,
            git_credentials=git_credentials,
            cache_dir=cache_dir,
            log=log,
            secret_build_env=secret_build_env,
            no_cache=no_cache,
            on_phase=on_phase,
            source_ready=source_ready,
        )
        return BuildResult(artifact=artifact)
    if kind == "image":
        engine = getattr(target, "docker_engine", None) or DockerEngine()
        image = build_job_image(
            manifest,
            job_type,
            workspace_root,
            engine,
            settings,
            tag,
            build_context=build_context,
            git_credentials=git_credentials,
            cache_dir=cache_dir,
            log=log,
            secret_build_env=secret_build_env,
            no_cache=no_cache,
            on_phase=on_phase,
            source_ready=source_ready,
        )
        return BuildResult(image_name=image)
    raise BuildFailed(f"infrastructure target {target.name} asks for artifacts of unknown kind {kind!r}")
