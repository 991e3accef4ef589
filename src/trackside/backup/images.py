"""Jobs on container targets: which image each runs, with its digest when the engine can tell.

Images live in the registry (or the engine), not in the data dir, so the archive lists them and
the restore says which ones must be there (docs/operations.md: keep the registry, or push them back).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

from trackside.backup.manifest import ImageEntry
from trackside.config import Settings

INSPECT_TIMEOUT_S = 20


def engine_url(settings: Settings, target: str) -> str | None:
    """The Docker engine of target `target`, "" for the default one, None when it is not a Docker target."""
    if target == "docker":
        return "" if settings.docker_url != "off" else None
    extra: dict[str, Any] | None = settings.docker_targets.get(target)
    return str(extra.get("url") or "") if extra is not None else None


def digest_of(image: str, url: str) -> str:
    """The image's repository digest (or its local id), "" when no engine answers."""
    docker = shutil.which("docker")
    if docker is None:
        return ""
    env = dict(os.environ)
    if url:
        env["DOCKER_HOST"] = url
    try:
        result = subprocess.run(
            [docker, "image", "inspect", "--format", '{{join .RepoDigests " "}}|{{.Id}}', image],
            env=env,
            capture_output=True,
            text=True,
            timeout=INSPECT_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    if result.returncode != 0:
        return ""
    repo_digests, _, image_id = result.stdout.strip().partition("|")
    return (repo_digests.split() or [image_id])[0]


def image_entries(settings: Settings, rows: list[dict[str, Any]]) -> list[ImageEntry]:
    """Entries for the job rows (name, version, target, tag, image) on container targets."""
    entries = []
    for row in rows:
        if not row["image"]:
            continue
        url = engine_url(settings, row["target"])
        entries.append(
            ImageEntry(
                job_name=row["name"],
                job_version=row["version"],
                target=row["target"],
                tag=row["tag"],
                image=row["image"],
                digest=digest_of(row["image"], url) if url is not None else "",
            )
        )
    return entries
