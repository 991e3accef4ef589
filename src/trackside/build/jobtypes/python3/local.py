"""The python3 job type's build for the local target: a shared virtualenv plus a runtime command.

The job runs as `VENV/bin/python -m trackside_runtime --entrypoint-path P` in its source directory,
with a copy of the stdlib-only runtime on PYTHONPATH; the job's venv never needs Trackside installed.
Bytecode for the job, its packages and the runtime is written at build time, because the hosts set
PYTHONDONTWRITEBYTECODE and a cold import roughly doubles start-up (a FastAPI app answered
its first request 0.44 s after spawn with bytecode present, 1.0 s without).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from pathlib import Path
from typing import Any

from trackside.build.artifacts import LocalArtifact
from trackside.build.jobtype import BuildRequest
from trackside.build.jobtypes.python3 import compat
from trackside.build.jobtypes.python3.entrypoint import check_entrypoint, resolve_inside
from trackside.build.jobtypes.python3.options import PythonOptions
from trackside.build.jobtypes.python3.requirements import PackageIndexes, installer_env, make_safe
from trackside.build.jobtypes.python3.venvs import (
    Interpreter,
    VenvCache,
    create_venv,
    find_interpreter,
    run_streaming,
    safe_fingerprint,
    venv_key,
)
from trackside.errors import BuildFailed

JOB_TYPE_NAME = "python3"
JOB_TYPE_VERSION = "1.0.0"
RUNTIME_PACKAGE = "trackside_runtime"
COMPAT_PACKAGE = "racetrack_job_wrapper"  # Racetrack's job API (src/racetrack_job_wrapper), beside the runtime


def build_local(request: BuildRequest, indexes: PackageIndexes | None = None) -> LocalArtifact:
    """Build for the local target; `indexes` are the platform's (the plugin passes its settings')."""
    indexes = indexes or PackageIndexes()
    log = request.log
    manifest = request.manifest
    workspace = request.workspace
    options = PythonOptions.from_manifest(manifest)
    job_class = check_entrypoint(workspace, options.entrypoint_path, options.entrypoint_class)
    log(f"entrypoint {options.entrypoint_path}, class {job_class}")
    requirements = _requirements_file(workspace, options.requirements_path)
    log(f"requirements: {requirements.relative_to(workspace.resolve()) if requirements else 'none'}")
    safe = make_safe(requirements, workspace, indexes, log) if requirements else None
    system_dependencies = list(getattr(manifest, "system_dependencies", None) or [])
    if system_dependencies:
        log(
            "warning: system_dependencies are not installed for the local target "
            f"({', '.join(system_dependencies)}); the build host must already have them"
        )

    build_env = installer_env({**dict(getattr(manifest, "build_env", None) or {}), **request.build_env}, log)
    env = _installer_env({**build_env, **installer_env(request.secret_build_env, log)})
    interpreter = find_interpreter(options.python_version, env)
    log(f"python {interpreter.version} at {interpreter.path}")
    layer = _compat_layer(request, options, interpreter, env)
    fingerprint = safe_fingerprint(safe, workspace, indexes)
    if layer is not None:
        fingerprint += f"\n# racetrack-compat {layer}"

    def build_venv(target: Path) -> None:
        create_venv(target, interpreter, safe, workspace, env, log, indexes)
        if layer is not None:
            compat.link_layer(target, layer)

    key = venv_key(fingerprint, interpreter, build_env)
    venv = VenvCache(request.cache_dir / "venvs").ensure(key, build_venv, log, no_cache=request.no_cache)
    python = venv / "bin" / "python"

    runtime_root = request.artifact_dir / "runtime"
    copy_runtime(runtime_root / RUNTIME_PACKAGE)
    copy_compat_package(runtime_root / COMPAT_PACKAGE)
    compile_bytecode(python, [workspace, runtime_root], env, log)

    command = [str(python), "-m", RUNTIME_PACKAGE, "--entrypoint-path", options.entrypoint_path]
    if options.entrypoint_class:
        command += ["--entrypoint-class", options.entrypoint_class]
    run_env = {
        "PYTHONPATH": str(runtime_root),
        "PYTHONUNBUFFERED": "1",
        "JOB_TYPE_VERSION": f"{JOB_TYPE_NAME}:{JOB_TYPE_VERSION}",
    }
    if options.max_concurrency is not None:
        run_env["JOB_MAX_CONCURRENCY"] = str(options.max_concurrency)
    if options.max_concurrency_queue is not None:
        run_env["JOB_MAX_CONCURRENCY_QUEUE"] = str(options.max_concurrency_queue)
    if options.home_page:
        run_env["JOB_HOME_PAGE"] = options.home_page
    return LocalArtifact(command=command, cwd=str(workspace), env=run_env, job_type_version=JOB_TYPE_VERSION)


def _compat_layer(
    request: BuildRequest, options: PythonOptions, interpreter: Interpreter, env: dict[str, str]
) -> Path | None:
    """The racetrack-compat layer's site dir when the job gets one (compat.py says when)."""
    on, asked, why = compat.wanted(request.manifest, options, request.workspace)
    request.log(f"racetrack-compat packages: {why}")
    if not on:
        return None
    try:
        return compat.ensure_layer(request.cache_dir, interpreter, env, request.log)
    except BuildFailed as exc:
        if asked:
            raise
        request.log(f"warning: building without the racetrack-compat packages: {exc}")
        return None


def _requirements_file(workspace: Path, requirements_path: str | None) -> Path | None:
    """The job's requirements file, never one reached through a link out of the job's source."""
    if requirements_path:
        path = resolve_inside(workspace, requirements_path, "jobtype_extra.requirements_path")
        if not path.is_file():
            raise BuildFailed(f"requirements file {requirements_path!r} not found in the job's source")
        return path
    default = resolve_inside(workspace, "requirements.txt", "requirements.txt")
    return default if default.is_file() else None


def _installer_env(build_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONHOME")}
    env.update(build_env)
    env.update({"NO_COLOR": "1", "UV_NO_PROGRESS": "1"})
    return env


def runtime_source_dir() -> Path:
    spec = importlib.util.find_spec("trackside.runtime")
    if spec is None or not spec.submodule_search_locations:
        raise BuildFailed("the trackside runtime package is missing from this installation")
    return Path(next(iter(spec.submodule_search_locations)))


def copy_runtime(dest: Path) -> None:
    """A private copy per build, so upgrading Trackside never changes a deployed job's runtime."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(runtime_source_dir(), dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def copy_compat_package(dest: Path) -> None:
    """Racetrack's `racetrack_job_wrapper` API (our thin package delegating to the runtime)."""
    spec = importlib.util.find_spec(COMPAT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BuildFailed(f"the {COMPAT_PACKAGE} package is missing from this installation")
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    source = Path(next(iter(spec.submodule_search_locations)))
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def compile_bytecode(python: Path, roots: list[Path], env: dict[str, str], log: Any) -> None:
    """compileall with the job's own interpreter, so the cache tag matches the one that imports."""
    skip = "|".join(re.escape(str(root.resolve())) for root in roots)
    exclude = rf"^({skip})/(.*/)?(\.git|\.venv|venv|node_modules)/"
    errors: list[str] = []
    rc, _ = run_streaming(
        [str(python), "-m", "compileall", "-q", "-x", exclude, *(str(r.resolve()) for r in roots)],
        roots[0],
        env,
        errors.append,
    )
    if rc != 0:
        for line in errors[-20:]:
            log(line)
        log("warning: some files of the job's source could not be compiled to bytecode (see above)")
