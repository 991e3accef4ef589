"""`trackside deploy`: send a job to the lifecycle API and follow the deployment to its end.

Mirrors `racetrack deploy` (docs/architecture.md, "Compatibility contracts"): POST /deploy with the merged manifest,
the secret env files and (by default) the job directory as a tarball, then poll GET /deploy/{id}. Polling starts at 50
ms because a cached local deploy finishes in well under two seconds, and backs off to 1 s so long builds do not hammer
the API. Progress goes to stderr (a Rich spinner on a terminal, one line per phase otherwise) and the job's URL alone
goes to stdout, so scripts can capture it.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.status import Status
from rich.text import Text

from trackside.cli.build_context import pack_directory
from trackside.cli.client import LifecycleClient
from trackside.cli.common import RemoteOption, log, open_client, stderr_console, warn
from trackside.cli.manifest import OverridesOption
from trackside.errors import DeployFailed, InvalidInput, TracksideError

FIRST_POLL_INTERVAL = 0.05
MAX_POLL_INTERVAL = 1.0
POLL_BACKOFF = 1.5
DEPLOY_TIMEOUT = 3600.0
# Uploads above this size are usually a forgotten data dir or virtualenv.
LARGE_CONTEXT_BYTES = 20 * 2**20


class BuildContextMode(enum.StrEnum):
    local = "local"
    git = "git"


def deploy(
    directory: Annotated[Path, typer.Argument(help="Job directory (holding job.yaml) or manifest file.")] = Path("."),
    overrides: OverridesOption = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing job of the same version.")] = False,
    remote: RemoteOption = None,
    build_context: Annotated[
        BuildContextMode,
        typer.Option("--build-context", help="local: upload the directory; git: the server clones git.remote."),
    ] = BuildContextMode.local,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Build from scratch, ignoring cached builds.")] = False,
) -> None:
    """Build and deploy the job in DIRECTORY; prints the job's URL when it serves."""
    from trackside.manifest.load import load_manifest, load_manifest_dict
    from trackside.manifest.secrets import load_secret_vars, secret_env_files

    extra = overrides or ()
    manifest = load_manifest(directory, extra)
    for warning in manifest.warnings:
        warn(warning)
    workdir = directory if directory.is_dir() else directory.parent
    body: dict[str, Any] = {
        "manifest": load_manifest_dict(directory, extra),
        "git_credentials": None,
        "secret_vars": load_secret_vars(manifest, workdir),
        "build_context": None,
        "force": force,
        "build_flags": ["--no-cache"] if no_cache else [],
    }
    if build_context is BuildContextMode.local:
        context = pack_directory(workdir, exclude=secret_env_files(manifest, workdir))
        for link in context.skipped_links:
            warn(f"build context: skipped symlink {link}: it points outside {workdir} or nowhere")
        log.debug("build context: %d files, %d bytes", len(context.files), len(context.data))
        if len(context.data) > LARGE_CONTEXT_BYTES:
            warn(
                f"build context is {len(context.data) / 2**20:.0f} MiB compressed; "
                f"exclude data with .gitignore or .racetrackignore in {workdir}"
            )
        body["build_context"] = context.to_base64()
    elif manifest.git is None:
        raise InvalidInput("--build-context git: the manifest has no git.remote to build from")

    label = f"{manifest.name} {manifest.version}"
    started = time.monotonic()
    with open_client(remote) as client:
        deployment_id = client.deploy(body)
        log.debug("deployment id: %s", deployment_id)
        try:
            deployment = follow_deployment(client, deployment_id, label)
        except KeyboardInterrupt:
            raise TracksideError(f"interrupted; deployment {deployment_id} goes on at {client.lifecycle_url}") from None
    elapsed = time.monotonic() - started
    if deployment.get("status") == "failed":
        raise DeployFailed(f"deploy failed: {deployment.get('error') or 'no reason given'}")
    job = deployment.get("job") or {}
    url = job.get("pub_url")
    stderr_console().print(Text(f"deployed {label} in {elapsed:.1f}s"), style="green")
    typer.echo(url or label)


def _warnings_of(deployment: dict[str, Any]) -> list[str]:
    raw = deployment.get("warnings")
    if not raw:
        return []
    if isinstance(raw, str):
        return [line for line in raw.splitlines() if line.strip()]
    return [str(item) for item in raw]


def follow_deployment(
    client: LifecycleClient,
    deployment_id: str,
    label: str,
    timeout: float = DEPLOY_TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll the deployment until it is done or failed, reporting phases and warnings on stderr."""
    console = stderr_console()
    live = console.is_terminal
    started = time.monotonic()
    interval = FIRST_POLL_INTERVAL
    last_phase: str | None = None
    seen_warnings: set[str] = set()
    status = Status(Text(f"deploying {label}"), console=console) if live else None
    if status is not None:
        status.start()
    try:
        while True:
            deployment = client.get_deployment(deployment_id)
            for warning in _warnings_of(deployment):
                if warning not in seen_warnings:
                    seen_warnings.add(warning)
                    warn(warning)
            elapsed = time.monotonic() - started
            phase = deployment.get("phase") or deployment.get("status") or "waiting"
            if status is not None:
                status.update(Text(f"deploying {label}: {phase} ({elapsed:.1f}s)"))
            elif phase != last_phase:
                console.print(Text(f"[{elapsed:6.1f}s] {phase}"), soft_wrap=True)
            last_phase = phase
            if deployment.get("status") in ("done", "failed"):
                return deployment
            if elapsed > timeout:
                raise DeployFailed(f"deploy of {label} still in progress after {timeout:.0f}s (id {deployment_id})")
            sleep(interval)
            interval = min(interval * POLL_BACKOFF, MAX_POLL_INTERVAL)
    finally:
        if status is not None:
            status.stop()
