"""Container image builds: a job's source becomes an image on a Docker engine, pushed to a registry.

Racetrack's image builder, in-process. A job type's image is either a Jinja2
Dockerfile template of the job type (`source: jobtype`, built with the build directory as context and
the job's source under `job_dir`) or the job's own Dockerfile (`source: job`, the job's source is the
context). Builds run with BuildKit on the network `docker_build_network` names (`build_network`): by
default the engine's own, so a Dockerfile's `RUN pip install` or `go mod download` reaches what the
engine's host reaches; `none` leaves builds offline (the python3 job type needs no network either
way: it downloads wheels on this host into the context). Secret build variables are
handed over as a BuildKit secret (`--secret id=build_secrets`, mounted by `RUN --mount=type=secret`
at `/run/secrets/build_secrets.env`), so they never land in a layer or in the image history. Each
output line of `docker build` goes to the build log as it comes; the engine's layer cache makes a
rebuild of unchanged source cheap, and `--no-cache` is passed through.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import jinja2

from trackside.build.artifacts import build_tag
from trackside.build.builder import PHASE_PREPARE, phase_logger, prepare_source
from trackside.build.confined import Escape, resolve_beneath
from trackside.build.dockerfiles import IMAGE_MAP_SETTING, base_images, map_images, pull_failure_hint, pull_failures
from trackside.build.jobtype import JobType, JobTypeImage
from trackside.build.spec import BuildSpec
from trackside.errors import BuildFailed, Unavailable

if TYPE_CHECKING:
    from trackside.config import Settings
    from trackside.manifest.model import Manifest

SECRET_ID = "build_secrets"
SECRET_TARGET = "/run/secrets/build_secrets.env"
BUILD_TIMEOUT = 1800.0
DEFAULT_NAMESPACE = "trackside"
JOBTYPE_CONTEXT_REPOSITORY = "trackside/jobtype-context"
LABEL_JOB_IMAGES = "trackside.job-images"  # how many images the job has (`image_reference` 0..n-1)
# Racetrack's job types listen on 7000 (image i on 7000+i), whatever PORT says: a target gives them a
# network of their own.
LABEL_FIXED_PORT = "trackside.fixed-port"
RACETRACK_PORT = 7000
# `--from=jobtype` of COPY, and `from=jobtype` of a RUN mount
_JOBTYPE_REFERENCE = re.compile(r"(--from=|\bfrom=)jobtype\b")
TRACKSIDE_VERSION_FALLBACK = "0"


@dataclass
class ImageContext:
    """What a job type's `prepare_image` hook gets to fill the build context and the template."""

    manifest: Any
    context_dir: Path  # the build context (the build directory; the source is in `job_dir`)
    job_dir: Path  # the job's source, with `git.directory` applied
    cache_dir: Path
    log: Callable[[str], None]
    base_image: str
    build_env: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False


@dataclass
class ContainerJobType(JobType):
    """A job type that also knows how to prepare its image's build context.

    `prepare_image(ImageContext)` runs on the build host before `docker build` (it may download
    packages into the context, so that the build works without network) and returns extra template
    variables.
    """

    prepare_image: Callable[[ImageContext], dict[str, Any]] | None = None
    default_base_image: str = ""


def image_reference(settings: Settings, job_name: str, tag: str, index: int = 0) -> str:
    """`{registry}/{namespace}/job-entrypoint/{name}:{tag}` (Racetrack's naming; `job-{i}` for extra images).

    `tag` may be a deployment tag (`build_tag+generation`, see `trackside.build.artifacts`): the image is
    the build's."""
    registry = settings.docker_registry.rstrip("/")
    namespace = (settings.docker_registry_namespace or DEFAULT_NAMESPACE).strip("/")
    tag = build_tag(tag)
    image = "job-entrypoint" if index == 0 else f"job-{index}"
    repository = f"{namespace}/{image}/{job_name}"
    return f"{registry}/{repository}:{tag}" if registry else f"{repository}:{tag}"


def base_image_for(settings: Settings, job_type: JobType) -> str:
    configured = settings.docker_base_images
    default = job_type.default_base_image if isinstance(job_type, ContainerJobType) else ""
    return str(configured.get(job_type.full_name) or configured.get(job_type.name) or default)


def trackside_version() -> str:
    try:
        from importlib.metadata import version

        return version("trackside")
    except Exception:  # noqa: BLE001 - metadata is missing in odd installs; the label is informative only
        return TRACKSIDE_VERSION_FALLBACK


class ImageEngine(Protocol):
    """What a build needs of a Docker engine (`trackside.infra.docker.engine.DockerEngine` is one)."""

    @property
    def url(self) -> str: ...

    def ping(self) -> None: ...

    def buildkit_available(self) -> bool: ...

    def default_build_network(self) -> str: ...

    def image_exists(self, image: str) -> bool: ...

    def stream(
        self,
        args: Sequence[str],
        on_line: Callable[[str], None],
        env: dict[str, str] | None = None,
        timeout: float = ...,
        buildkit: bool = False,
    ) -> tuple[int, list[str]]: ...


def build_job_image(
    spec: BuildSpec, engine: ImageEngine, settings: Settings, labels: dict[str, str] | None = None
) -> str:
    """Fetch the source into `spec.source_dir`, build the job's image(s), push them; the first's name.

    `labels` are added to every image (e.g. the platform's identity)."""
    if not spec.tag:
        raise BuildFailed("an image build needs a tag (BuildSpec.tag)")
    log, manifest, job_type = spec.log, spec.manifest, spec.job_type
    started = time.monotonic()
    phase = phase_logger(spec)
    job_dir, git_version, _ = prepare_source(spec, phase)

    phase(PHASE_PREPARE)
    log(f"job type {job_type.full_name}, Docker engine {engine.url}")
    engine.ping()
    if not engine.buildkit_available():
        raise BuildFailed(
            f"the docker client on this host cannot build with BuildKit (needed for build secrets and "
            f"offline builds); install Debian's docker.io (Docker engine {engine.url})"
        )
    images = job_type.images or []
    if not images:
        raise BuildFailed(f"job type {job_type.full_name} has no container image definition")
    network = build_network(engine, settings)
    log(f"build network: {network} (setting docker_build_network: {settings.docker_build_network})")
    registry = settings.docker_registry
    names: list[str] = []
    for index, image in enumerate(images):
        name = image_reference(settings, manifest.name, spec.tag, index)
        count = f"({index + 1}/{len(images)})"
        phase(f"building image {count}")
        context_dir, dockerfile = _dockerfile(engine, image, index, spec, job_dir, settings, git_version or "")
        missing = [name for name in base_images(dockerfile.read_text()) if not engine.image_exists(name)]
        for name in missing:
            log(f"image {name} is not on Docker engine {engine.url}: the build pulls it")
        build_image(
            engine,
            name,
            context_dir,
            dockerfile,
            log,
            spec.secret_build_env,
            spec.no_cache,
            labels={**_image_labels(manifest, job_type, len(images)), **(labels or {})},
            network=network,
            missing_images=missing,
        )
        if registry:
            phase(f"pushing image {count}")
            push_image(engine, name, registry, log)
        names.append(name)
    log(f"image {names[0]} built in {time.monotonic() - started:.2f} s")
    return names[0]


def _image_labels(manifest: Manifest, job_type: JobType, count: int) -> dict[str, str]:
    """Every image of a job says which job it is and how many images the job has (a target starts them
    all); a Racetrack job type's images also say that they listen on Racetrack's fixed port."""
    labels = {
        "racetrack-component": "job",
        "trackside.job-name": manifest.name,
        "trackside.job-version": manifest.version,
        "trackside.job-type": job_type.full_name,
        LABEL_JOB_IMAGES: str(count),
    }
    if any(image.racetrack_style for image in job_type.images):
        labels[LABEL_FIXED_PORT] = str(RACETRACK_PORT)
    return labels


def _dockerfile(
    engine: ImageEngine,
    image: JobTypeImage,
    index: int,
    spec: BuildSpec,
    job_dir: Path,
    settings: Settings,
    git_version: str,
) -> tuple[Path, Path]:
    """The build context and the Dockerfile of one image (written as `.job-{index}.Dockerfile`).

    Whatever its origin, the Dockerfile's images are mapped to local ones (`docker_image_map`)."""
    manifest, job_type, log = spec.manifest, spec.job_type, spec.log
    workspace_root = spec.workspace
    if image.source == "job":
        extra = dict(manifest.jobtype_extra or {})
        relative = image.dockerfile_path or str(extra.get("dockerfile_path") or "Dockerfile")
        dockerfile = _inside(job_dir, relative, "jobtype_extra.dockerfile_path")
        if not dockerfile.is_file():
            raise BuildFailed(f"Dockerfile {relative!r} (jobtype_extra.dockerfile_path) not found in the job's source")
        log(f"using the job's own Dockerfile {relative}")
        context_dir, text = job_dir, dockerfile.read_text()
    elif image.template is None or not Path(image.template).is_file():
        raise BuildFailed(f"job type {job_type.full_name}: Dockerfile template {image.template} is missing")
    elif image.racetrack_style:
        context_dir, text = job_dir, render_racetrack_dockerfile(image, spec, git_version)
        text = _with_jobtype_context(engine, image, text, workspace_root, log)
    else:
        context_dir, text = workspace_root, _trackside_dockerfile(engine, image, spec, job_dir, settings, git_version)
    text = map_local_images(text, settings, log)
    dockerfile = workspace_root / f".job-{index}.Dockerfile"
    dockerfile.write_text(text)
    return context_dir, dockerfile


def _trackside_dockerfile(
    engine: ImageEngine,
    image: JobTypeImage,
    spec: BuildSpec,
    job_dir: Path,
    settings: Settings,
    git_version: str,
) -> str:
    """A Trackside job type's template: strict Jinja2, the workspace as context, `prepare_image` run."""
    manifest, job_type, log = spec.manifest, spec.job_type, spec.log
    assert image.template is not None
    base_image = base_image_for(settings, job_type)
    build_env = {str(k): str(v) for k, v in (manifest.build_env or {}).items()}
    workspace_root = spec.workspace
    variables: dict[str, Any] = {
        **racetrack_variables(spec, git_version),
        "base_image": base_image,
        "job_dir": job_dir.resolve().relative_to(workspace_root.resolve()).as_posix() or ".",
        "secret_mount": f"--mount=type=secret,id={SECRET_ID},target={SECRET_TARGET}",
        "secret_target": SECRET_TARGET,
    }
    if base_image:
        _check_base_image(engine, base_image, log)
    if isinstance(job_type, ContainerJobType) and job_type.prepare_image is not None:
        context = ImageContext(
            manifest, workspace_root, job_dir, spec.cache_dir, log, base_image, build_env, spec.no_cache
        )
        variables.update(job_type.prepare_image(context) or {})
    try:
        template = jinja2.Template(
            Path(image.template).read_text(), undefined=jinja2.StrictUndefined, keep_trailing_newline=True
        )
        return str(template.render(**variables))
    except jinja2.TemplateError as exc:
        raise BuildFailed(f"job type {job_type.full_name}: Dockerfile template {image.template}: {exc}") from exc


def racetrack_variables(spec: BuildSpec, git_version: str) -> dict[str, Any]:
    """The template variables Racetrack's image builder gives a job type's Dockerfile template."""
    manifest, job_type = spec.manifest, spec.job_type
    return {
        "manifest": manifest,
        "manifest_jobtype_extra": dict(manifest.jobtype_extra or {}),
        "env_vars": {str(k): str(v) for k, v in (manifest.build_env or {}).items()},
        "git_version": git_version,
        "deployed_by_racetrack_version": trackside_version(),
        "job_type_version": job_type.version,
        "resource_name": f"job-{manifest.name}-v-{manifest.version.replace('.', '-')}",
    }


def render_racetrack_dockerfile(image: JobTypeImage, spec: BuildSpec, git_version: str) -> str:
    """A Racetrack job-type plugin's template, rendered as Racetrack renders it (plain Jinja2)."""
    assert image.template is not None
    text = Path(image.template).read_text()
    if not image.render:
        return text
    try:
        return str(jinja2.Template(text).render(**racetrack_variables(spec, git_version)))
    except jinja2.TemplateError as exc:
        raise BuildFailed(f"job type {spec.job_type.full_name}: Dockerfile template {image.template}: {exc}") from exc


def _with_jobtype_context(
    engine: ImageEngine, image: JobTypeImage, text: str, workspace_root: Path, log: Callable[[str], None]
) -> str:
    """`COPY --from=jobtype` reading from the plugin's directory.

    Racetrack passes the directory as a named build context (`--build-context jobtype=DIR`, a buildx
    option the engine's own client lacks); the same files are put in an image of their own, named by
    their content, and the Dockerfile's `jobtype` references point at it."""
    if not _JOBTYPE_REFERENCE.search(text):
        return text
    if image.jobtype_dir is None or not image.jobtype_dir.is_dir():
        raise BuildFailed(f"job type directory {image.jobtype_dir} (COPY --from=jobtype) is missing")
    reference = f"{JOBTYPE_CONTEXT_REPOSITORY}:{_directory_digest(image.jobtype_dir)}"
    if not engine.image_exists(reference):
        dockerfile = workspace_root / ".jobtype.Dockerfile"
        dockerfile.write_text("FROM scratch\nCOPY . /\n")
        log(f"job type files as image {reference} (the named build context 'jobtype')")
        build_image(
            engine,
            reference,
            image.jobtype_dir,
            dockerfile,
            log,
            labels={"trackside.component": "jobtype-context"},
            network="none",
        )
    return _JOBTYPE_REFERENCE.sub(lambda m: f"{m.group(1)}{reference}", text)


def _directory_digest(root: Path) -> str:
    """A digest of a directory's files (names and contents): the tag of its context image."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:20]


def map_local_images(text: str, settings: Settings, log: Callable[[str], None]) -> str:
    """The Dockerfile with the operator's `docker_image_map` applied, each replacement logged."""
    mapping = settings.docker_image_map
    if not mapping:
        return text
    text, mapped = map_images(text, mapping)
    for item in mapped:
        log(f"image {item.image} -> {item.local} (setting {IMAGE_MAP_SETTING}, Dockerfile line {item.line})")
    return text


def build_network(engine: ImageEngine, settings: Settings) -> str:
    """`docker build --network` for this engine: the operator's `docker_build_network`, `auto` = the engine's."""
    chosen = settings.docker_build_network
    return engine.default_build_network() if chosen == "auto" else chosen


def _check_base_image(engine: ImageEngine, base_image: str, log: Callable[[str], None]) -> None:
    if not engine.image_exists(base_image):
        raise BuildFailed(
            f"base image {base_image} is not on Docker engine {engine.url} and builds pull nothing: "
            "run scripts/docker-setup, or set docker_base_images in the settings"
        )
    log(f"base image {base_image}")


def _inside(root: Path, relative: str, what: str) -> Path:
    try:
        return resolve_beneath(root, relative)
    except Escape as exc:
        raise BuildFailed(f"{what} {relative!r} must be a path inside the job's source ({exc})") from None


def build_image(
    engine: ImageEngine,
    name: str,
    context_dir: Path,
    dockerfile: Path,
    log: Callable[[str], None],
    secret_build_env: dict[str, str] | None = None,
    no_cache: bool = False,
    labels: dict[str, str] | None = None,
    timeout: float = BUILD_TIMEOUT,
    network: str = "none",
    missing_images: Sequence[str] = (),
) -> None:
    """`docker build` with BuildKit on `network`; BuildFailed carries the failing step's output.

    `missing_images` are the Dockerfile's images the engine lacked: one the build could not pull is
    named in the log and the error, with the setting that maps it to a local image."""
    args = ["build", "--network", network, "--progress", "plain", "-t", name, "-f", str(dockerfile)]
    if no_cache:
        args.append("--no-cache")
    for key, value in (labels or {}).items():
        args += ["--label", f"{key}={value}"]
    secrets_dir = None
    try:
        if secret_build_env:
            # In memory where the host has a tmpfs for it: the file lives only for this one build.
            memory = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
            secrets_dir = Path(tempfile.mkdtemp(prefix="trackside-build-secrets-", dir=memory))
            secrets_file = secrets_dir / "build_secrets.env"
            fd = os.open(secrets_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write("".join(f"{k}={shlex.quote(str(v))}\n" for k, v in secret_build_env.items()))
            args += ["--secret", f"id={SECRET_ID},src={secrets_file}"]
        args.append(str(context_dir))
        started = time.monotonic()
        code, last = engine.stream(args, log, timeout=timeout, buildkit=True)
    finally:
        if secrets_dir is not None:
            shutil.rmtree(secrets_dir, ignore_errors=True)
    if code != 0:
        text = "\n".join(last)
        if "Cannot connect to the Docker daemon" in text or "error during connect" in text:
            raise Unavailable(f"Docker engine {engine.url} is not reachable: {last[-1] if last else ''}")
        hints = [pull_failure_hint(image) for image in pull_failures(last, missing_images)]
        for hint in hints:
            log(hint)
        raise BuildFailed("\n".join(["image build failed:", *hints, _failure_summary(last)]))
    log(f"docker build finished in {time.monotonic() - started:.2f} s")


def _failure_summary(last: list[str]) -> str:
    """The failing step and its error, from BuildKit's plain progress output."""
    interesting = [line for line in last if line.strip() and not line.startswith("#") or "ERROR" in line]
    return "\n".join(interesting[-15:]) or "\n".join(last[-15:])


def push_image(engine: ImageEngine, name: str, registry: str, log: Callable[[str], None]) -> None:
    code, last = engine.stream(["push", name], log, timeout=BUILD_TIMEOUT)
    if code != 0:
        reason = last[-1] if last else "no output"
        if any(m in reason for m in ("connection refused", "no such host", "i/o timeout", "dial tcp")):
            raise Unavailable(f"registry {registry} is not reachable (pushing {name}): {reason}")
        raise BuildFailed(f"pushing {name} to registry {registry} failed: {reason}")
