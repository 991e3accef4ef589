"""The job type interface: how a job's source becomes something an infrastructure target can run.

A job type is provided by a plugin's `job_types()` hook, built-in `python3` included. It can build
for the local target (`build_local`, a command run in a virtualenv) and for container targets
(`images`, Jinja2 Dockerfile templates as in Racetrack's job type plugins).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from trackside.build.artifacts import LocalArtifact

if TYPE_CHECKING:
    from trackside.manifest.model import Manifest


@dataclass
class JobTypeImage:
    """One container image of a job: a Dockerfile template from the job type or the job's own.

    A template in Racetrack's style (`racetrack_style`, what a Racetrack job-type plugin gives) is
    rendered as Racetrack renders it: plain Jinja2 (an undefined variable is empty), Racetrack's
    template variables only, the job's source as the build context and the plugin's directory
    (`jobtype_dir`) as the named context `jobtype` of `COPY --from=jobtype`.
    """

    source: str = "jobtype"  # "jobtype" | "job"
    dockerfile_path: str | None = None  # relative to the job's source when source == "job"
    template: Path | None = None  # Jinja2 template when source == "jobtype"
    racetrack_style: bool = False
    render: bool = True  # Racetrack's `template: false`: the Dockerfile is used as it is
    jobtype_dir: Path | None = None  # the plugin's directory: `COPY --from=jobtype` reads from it


@dataclass
class BuildRequest:
    """Everything a job type needs to build one job version."""

    manifest: Manifest
    workspace: Path  # the fetched source, with `git.directory` already applied
    artifact_dir: Path  # where the build may keep what the job runs from (kept while the job exists)
    cache_dir: Path  # shared between builds (virtualenvs, wheels); keyed by content
    log: Callable[[str], None]  # one line of build log (no trailing newline)
    build_env: dict[str, str] = field(default_factory=dict)
    secret_build_env: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False


@dataclass
class JobType:
    name: str
    version: str
    images: list[JobTypeImage] = field(default_factory=list)
    local_builder: Callable[[BuildRequest], LocalArtifact] | None = None

    @property
    def full_name(self) -> str:
        return f"{self.name}:{self.version}"

    def builds_for(self, artifact_kind: str) -> bool:
        """Can this job type build what a target of `artifact_kind` runs ("local" or "image")?"""
        return self.local_builder is not None if artifact_kind == "local" else bool(self.images)

    def build_local(self, request: BuildRequest) -> LocalArtifact:
        if self.local_builder is None:
            from trackside.errors import BuildFailed

            raise BuildFailed(f"job type {self.full_name} cannot build for the local target")
        return self.local_builder(request)
