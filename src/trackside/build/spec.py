"""What one build needs, as one typed object: the job, where its source comes from, where it goes, and
where its log and phases are reported.

Every build (a local artifact or a container image) takes a `BuildSpec`, so the lifecycle's build step,
the image builder of a target and the local builder all receive the same object instead of a dozen
keyword arguments passed on from layer to layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trackside.build.jobtype import JobType

if TYPE_CHECKING:
    from trackside.manifest.model import Manifest


@dataclass(frozen=True)
class BuildSpec:
    """One build of one job version.

    `workspace` is the build directory: the source goes into `workspace/src`, and what the job runs
    from (a local build) or the image's build context is kept beside it. With `source_ready`,
    `workspace/src` already holds the source (a redeploy or move reusing an earlier build's source)
    and nothing is fetched; `git_version` and `source_version` are then what that build recorded
    (default "tar"). With `fetched` too, the caller fetched it for this very build and reported that
    phase already. Otherwise a `source_version` that is a git commit is checked out instead of the
    branch's head (a redeploy rebuilding exactly what was built before).
    """

    manifest: Manifest
    job_type: JobType
    workspace: Path
    cache_dir: Path  # shared between builds (virtualenvs, wheels); keyed by content
    log: Callable[[str], None]  # one line of build log (no trailing newline)
    tag: str = ""  # the build's tag: images are named by it
    build_context: str | None = None  # an uploaded source (base64 tar.gz), instead of `manifest.git`
    git_credentials: dict[str, Any] | None = None  # {username, password} for a private git remote
    secret_build_env: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    on_phase: Callable[[str], None] | None = None  # told each phase's name as it starts
    source_ready: bool = False
    git_version: str | None = None
    source_version: str | None = None  # a git commit, or `sha256:...` of an uploaded context
    fetched: bool = False

    @property
    def pinned_commit(self) -> str | None:
        """The git commit to build instead of the branch's head, if any."""
        version = self.source_version or ""
        return version if version and not version.startswith("sha256:") else None

    @property
    def source_dir(self) -> Path:
        return self.workspace / "src"

    def secrets(self) -> list[str]:
        """Values that must never show in a build log."""
        password = (self.git_credentials or {}).get("password") or ""
        return [value for value in (*self.secret_build_env.values(), password) if value]
