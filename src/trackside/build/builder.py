"""One local build: fetch the source, then let the job type turn it into a runnable artifact.

Kept apart from the lifecycle's deploy orchestration so it can be called, and tested, on its own; the
caller records phases (through `BuildSpec.on_phase`) and keeps the log.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable

from trackside.build.artifacts import LocalArtifact
from trackside.build.buildlog import BuildLog
from trackside.build.jobtype import BuildRequest
from trackside.build.source import FetchedSource, credential_strings, existing_job_dir, fetch_source
from trackside.build.spec import BuildSpec

PHASE_FETCH = "fetching the source code"
PHASE_PREPARE = "preparing job type builder"
PHASE_BUILD = "building virtualenv"


def phase_logger(spec: BuildSpec) -> Callable[[str], None]:
    """A phase change: a `--- name` line in the build log, and the caller told (deployment phase)."""

    def phase(name: str) -> None:
        spec.log(f"--- {name}")
        if spec.on_phase is not None:
            spec.on_phase(name)

    return phase


def prepare_source(spec: BuildSpec, phase: Callable[[str], None]) -> FetchedSource:
    """The first phase of every build (local or image): the job's source in `spec.source_dir`.

    With `spec.source_ready`, the source is already there (a redeploy reusing an earlier build's
    source) and its versions are what that build recorded (`git_version` defaults to "tar").
    """
    log = spec.log
    if isinstance(log, BuildLog):
        log.add_secrets([*spec.secret_build_env.values(), *credential_strings(spec.git_credentials)])
    if spec.source_ready and spec.fetched:
        return _ready(spec)
    started = time.monotonic()
    phase(PHASE_FETCH)
    source_dir = spec.source_dir
    if spec.source_ready:
        log(f"using the source already in {source_dir}")
        if spec.source_version:
            log(f"source: {describe_source(spec.source_version)}")
        return _ready(spec)
    if source_dir.exists():  # a retried build starts from a clean checkout
        shutil.rmtree(source_dir)
    fetched = fetch_source(
        spec.manifest, source_dir, spec.build_context, spec.git_credentials, log, commit=spec.pinned_commit
    )
    log(f"source fetched in {time.monotonic() - started:.2f} s")
    return fetched


def _ready(spec: BuildSpec) -> FetchedSource:
    job_dir = existing_job_dir(spec.manifest, spec.source_dir)
    return FetchedSource(job_dir, spec.git_version or "tar", spec.source_version or "")


def describe_source(source_version: str) -> str:
    """How a build log names a source version."""
    if source_version.startswith("sha256:"):
        return f"uploaded build context {source_version}"
    return f"git commit {source_version}"


def build_job(spec: BuildSpec) -> LocalArtifact:
    """Build `spec.manifest` with `spec.job_type` into `spec.workspace` (source in `src/`, the rest beside it)."""
    started = time.monotonic()
    phase = phase_logger(spec)
    job_dir, git_version, _ = prepare_source(spec, phase)

    phase(PHASE_PREPARE)
    spec.log(f"job type {spec.job_type.full_name}")
    request = BuildRequest(
        manifest=spec.manifest,
        workspace=job_dir,
        artifact_dir=spec.workspace,
        cache_dir=spec.cache_dir,
        log=spec.log,
        build_env=dict(spec.manifest.build_env or {}),
        secret_build_env=dict(spec.secret_build_env),
        no_cache=spec.no_cache,
    )

    phase(PHASE_BUILD)
    artifact = spec.job_type.build_local(request)
    artifact.env.setdefault("GIT_VERSION", git_version)
    spec.log(f"build finished in {time.monotonic() - started:.2f} s")
    return artifact
