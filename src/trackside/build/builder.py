"""One local build: fetch the source, then let the job type turn it into a runnable artifact.

Kept apart from the lifecycle's deploy orchestration so it can be called, and tested, on its own; the
caller records phases (through `on_phase`) and keeps the log.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trackside.build.artifacts import LocalArtifact
from trackside.build.buildlog import BuildLog
from trackside.build.jobtype import BuildRequest, JobType
from trackside.build.source import credential_strings, existing_job_dir, fetch_source

if TYPE_CHECKING:
    from trackside.manifest.model import Manifest

PHASE_FETCH = "fetching the source code"
PHASE_PREPARE = "preparing job type builder"
PHASE_BUILD = "building virtualenv"


def phase_logger(log: Callable[[str], None], on_phase: Callable[[str], None] | None) -> Callable[[str], None]:
    """A phase change: a `--- name` line in the build log, and the caller told (deployment phase)."""

    def phase(name: str) -> None:
        log(f"--- {name}")
        if on_phase is not None:
            on_phase(name)

    return phase


def prepare_source(
    manifest: Manifest | Any,
    workspace_root: Path,
    build_context: str | None,
    git_credentials: dict[str, Any] | None,
    log: Callable[[str], None],
    phase: Callable[[str], None],
    secret_build_env: dict[str, str],
    source_ready: bool = False,
    git_version: str | None = None,
) -> tuple[Path, str]:
    """The first phase of every build (local or image): the job's source in `workspace_root/src`.

    Returns (job_dir, git_version). With `source_ready`, `src/` already holds it (a redeploy reusing an
    earlier build's source) and `git_version` (default "tar") is what that build recorded.
    """
    if isinstance(log, BuildLog):
        log.add_secrets([*secret_build_env.values(), *credential_strings(git_credentials)])
    started = time.monotonic()
    phase(PHASE_FETCH)
    source_dir = workspace_root / "src"
    if source_ready:
        log(f"using the source already in {source_dir}")
        return existing_job_dir(manifest, source_dir), git_version or "tar"
    if source_dir.exists():  # a retried build starts from a clean checkout
        shutil.rmtree(source_dir)
    job_dir, fetched_version = fetch_source(manifest, source_dir, build_context, git_credentials, log)
    log(f"source fetched in {time.monotonic() - started:.2f} s")
    return job_dir, fetched_version


def build_job(
    manifest: Manifest | Any,
    job_type: JobType,
    workspace_root: Path,
    build_context: str | None,
    git_credentials: dict[str, Any] | None,
    cache_dir: Path,
    log: Callable[[str], None],
    secret_build_env: dict[str, str] | None = None,
    no_cache: bool = False,
    on_phase: Callable[[str], None] | None = None,
    source_ready: bool = False,
    git_version: str | None = None,
) -> LocalArtifact:
    """Build `manifest` with `job_type` into `workspace_root` (source in `src/`, the rest beside it).

    With `source_ready`, `workspace_root/src` already holds the source (a redeploy reusing an earlier
    build's `src/`): nothing is fetched, and `git_version` (default "tar") is what that build recorded.
    """
    secret_build_env = dict(secret_build_env or {})
    started = time.monotonic()
    phase = phase_logger(log, on_phase)
    job_dir, git_version = prepare_source(
        manifest,
        workspace_root,
        build_context,
        git_credentials,
        log,
        phase,
        secret_build_env,
        source_ready,
        git_version,
    )

    phase(PHASE_PREPARE)
    log(f"job type {job_type.full_name}")
    request = BuildRequest(
        manifest=manifest,
        workspace=job_dir,
        artifact_dir=workspace_root,
        cache_dir=cache_dir,
        log=log,
        build_env=dict(getattr(manifest, "build_env", None) or {}),
        secret_build_env=secret_build_env,
        no_cache=no_cache,
    )

    phase(PHASE_BUILD)
    artifact = job_type.build_local(request)
    artifact.env.setdefault("GIT_VERSION", git_version)
    log(f"build finished in {time.monotonic() - started:.2f} s")
    return artifact
