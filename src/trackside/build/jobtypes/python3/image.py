"""The python3 job type's image: the build context the Dockerfile template expects.

The image runs the same stdlib-only runtime as the local target (copied in as `trackside_runtime`),
in a virtualenv made from the base image's Python. An image build has no network, so the job's
requirements are turned into wheels on the build host (`pip wheel`, cached by the requirements'
content) and installed inside the image from those files only (`pip install --no-index`). The wheels
are bind-mounted into that one `RUN` step, so they are not kept in a layer.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from trackside.build.images import ImageContext
from trackside.build.jobtypes.python3 import compat
from trackside.build.jobtypes.python3.entrypoint import check_entrypoint
from trackside.build.jobtypes.python3.local import (
    COMPAT_PACKAGE,
    RUNTIME_PACKAGE,
    _requirements_file,
    copy_compat_package,
    copy_runtime,
)
from trackside.build.jobtypes.python3.options import PythonOptions
from trackside.build.jobtypes.python3.requirements import (
    PackageIndexes,
    SafeRequirements,
    installer_env,
    make_safe,
)
from trackside.build.jobtypes.python3.venvs import run_streaming, safe_fingerprint
from trackside.errors import BuildFailed

EXTRAS_DIR = ".trackside"
TEMPLATE = Path(__file__).with_name("Dockerfile.j2")
DEFAULT_BASE_IMAGE = "trackside/python3-base:bookworm"
WHEELS_SCHEMA = "trackside-wheels-1"
MARKER = ".complete"


def prepare_image(context: ImageContext, indexes: PackageIndexes | None = None) -> dict[str, Any]:
    """Check the entrypoint, copy the runtime and the wheels into the context; the template variables.

    `indexes` are the platform's package indexes (the plugin passes its settings'); the job's own
    requirements file is made safe first (`requirements.make_safe`), and the image gets that text.
    """
    indexes = indexes or PackageIndexes()
    log = context.log
    manifest = context.manifest
    options = PythonOptions.from_manifest(manifest)
    job_class = check_entrypoint(context.job_dir, options.entrypoint_path, options.entrypoint_class)
    log(f"entrypoint {options.entrypoint_path}, class {job_class}")
    system_dependencies = list(getattr(manifest, "system_dependencies", None) or [])
    if system_dependencies:
        raise BuildFailed(
            f"system_dependencies ({', '.join(system_dependencies)}) can't be installed: image builds have no "
            "network; use a base image that has them (settings docker_base_images.python3) or the dockerfile "
            "job type"
        )
    extras = context.context_dir / EXTRAS_DIR
    if extras.exists():
        shutil.rmtree(extras)
    copy_runtime(extras / "runtime" / RUNTIME_PACKAGE)
    copy_compat_package(extras / "runtime" / COMPAT_PACKAGE)
    has_compat = _compat_wheels(context, options, extras / "compat-wheels", indexes)
    requirements = _requirements_file(context.job_dir, options.requirements_path)
    wheels = extras / "wheels"
    if requirements is not None:
        log(f"requirements: {requirements.relative_to(context.job_dir.resolve())}")
        safe = make_safe(requirements, context.job_dir, indexes, log)
        cached = _wheels(safe, context, indexes)
        shutil.copytree(cached, wheels, ignore=shutil.ignore_patterns(MARKER))
        (wheels / "requirements.txt").write_text(safe.requirements_text)
    else:
        log("requirements: none")
        wheels.mkdir(parents=True)
    command = ["/job-venv/bin/python", "-m", RUNTIME_PACKAGE, "--entrypoint-path", options.entrypoint_path]
    if options.entrypoint_class:
        command += ["--entrypoint-class", options.entrypoint_class]
    runtime_env = {}
    if options.max_concurrency is not None:
        runtime_env["JOB_MAX_CONCURRENCY"] = str(options.max_concurrency)
    if options.max_concurrency_queue is not None:
        runtime_env["JOB_MAX_CONCURRENCY_QUEUE"] = str(options.max_concurrency_queue)
    if options.home_page:
        runtime_env["JOB_HOME_PAGE"] = options.home_page
    return {
        "extras_dir": EXTRAS_DIR,
        "has_requirements": requirements is not None,
        "has_compat": has_compat,
        "compat_dir": compat.IMAGE_DIR,
        "compat_pth": compat.PTH_NAME,
        "command": command,
        "runtime_env": runtime_env,
    }


def _compat_wheels(context: ImageContext, options: PythonOptions, dest: Path, indexes: PackageIndexes) -> bool:
    """Wheels of the racetrack-compat layer in `dest` when the job gets it (see compat.py)."""
    on, asked, why = compat.wanted(context.manifest, options, context.job_dir)
    context.log(f"racetrack-compat packages: {why}")
    if not on:
        return False
    # The platform's own list, not a job's: no need to make it safe, only to hand it over as one.
    listing = SafeRequirements(requirements=compat.requirements_text().splitlines())
    try:
        cached = _wheels(listing, context, indexes)
    except BuildFailed as exc:
        if asked:
            raise
        context.log(f"warning: building without the racetrack-compat packages: {exc}")
        return False
    shutil.copytree(cached, dest, ignore=shutil.ignore_patterns(MARKER))
    (dest / "requirements.txt").write_text(listing.requirements_text)
    return True


def _wheels(safe: SafeRequirements, context: ImageContext, indexes: PackageIndexes) -> Path:
    """Wheels for `safe`, made once per distinct requirements set and reused by later builds."""
    import hashlib

    fingerprint = safe_fingerprint(safe, context.job_dir, indexes)
    job_env = installer_env(context.build_env, context.log)
    build_env = sorted(job_env.items())
    key = hashlib.sha256(f"{WHEELS_SCHEMA}\n{sys.version_info[:2]}\n{build_env}\n{fingerprint}".encode()).hexdigest()[
        :24
    ]
    target = context.cache_dir / "wheels" / key
    if (target / MARKER).is_file() and not context.no_cache:
        context.log(f"wheels from the cache ({key})")
        return target
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env.update(job_env)
    env.update({"PIP_DISABLE_PIP_VERSION_CHECK": "1", "NO_COLOR": "1"})
    context.log("downloading wheels on the build host (the image build has no network)")
    with tempfile.TemporaryDirectory(prefix="trackside-requirements-") as scratch:
        requirements, constraints = safe.write(Path(scratch))
        command = [
            sys.executable, "-m", "pip", "wheel", "--no-input", "--progress-bar", "off",
            *indexes.installer_args(),
            "-w", str(target),
            "-r", str(requirements),
        ]  # fmt: skip
        if constraints is not None:
            command += ["-c", str(constraints)]
        code, last = run_streaming(command, context.job_dir, env, context.log, timeout=900.0)
    if code != 0:
        shutil.rmtree(target, ignore_errors=True)
        raise BuildFailed("could not download the job's requirements:\n" + "\n".join(last[-10:]))
    (target / MARKER).write_text("")
    return target
