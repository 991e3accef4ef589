"""Cleaning job images out of the registry and off the Docker engines.

Which images are still wanted is the store's answer: the build tag of every job version it holds
(running or not) and the image of every deployment still in progress. Everything else under
`{namespace}/job-entrypoint/` (deleted jobs, builds replaced by a later deploy) is removed: manifests
through the registry's HTTP API (`DELETE /v2/{repo}/manifests/{digest}`, which needs deletes enabled;
the blobs go at the registry's next `garbage-collect`), and tagged images from each engine, unless a
container uses them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from trackside.errors import TracksideError, Unavailable
from trackside.identity import platform_id
from trackside.infra.docker.engine import DockerEngine
from trackside.infra.docker.naming import LABEL_PLATFORM

if TYPE_CHECKING:
    from trackside.config import Settings

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)
JOB_IMAGE = "job-entrypoint"


@dataclass
class CleanReport:
    removed_from_registry: list[str] = field(default_factory=list)
    removed_from_engines: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def registry_base_url(registry: str) -> str:
    if registry.startswith(("http://", "https://")):
        return registry.rstrip("/")
    host = registry.split("/")[0]
    plain = host.startswith(("127.", "localhost", "[::1]"))
    return f"{'http' if plain else 'https'}://{host}"


def _repo_job(repo: str, namespace: str) -> str | None:
    prefix = f"{namespace}/{JOB_IMAGE}/"
    return repo[len(prefix) :] if repo.startswith(prefix) else None


def clean_registry(
    registry: str, namespace: str, keep: set[tuple[str, str]], report: CleanReport, dry_run: bool = False
) -> None:
    base = registry_base_url(registry)
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            for repo in _repositories(http):
                job = _repo_job(repo, namespace)
                if job is None:
                    continue
                tags = http.get(f"/v2/{repo}/tags/list")
                if tags.status_code == 404:
                    continue
                tags.raise_for_status()
                digests: dict[str, str] = {}
                for tag in tags.json().get("tags") or []:
                    head = http.head(f"/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_TYPES})
                    digest = head.headers.get("Docker-Content-Digest")
                    if head.status_code == 200 and digest:
                        digests[tag] = digest
                # A manifest delete removes every tag of that digest: one kept tag keeps the digest.
                kept_digests = {d for tag, d in digests.items() if (job, tag) in keep}
                deleted: set[str] = set()
                for tag, digest in sorted(digests.items()):
                    image = f"{registry}/{repo}:{tag}"
                    if (job, tag) in keep or digest in kept_digests:
                        report.kept.append(image)
                        continue
                    if not dry_run and digest not in deleted:
                        response = http.delete(f"/v2/{repo}/manifests/{digest}")
                        if response.status_code == 405:
                            raise TracksideError(f"registry {registry} refuses deletes (enable storage.delete)")
                        if response.status_code not in (202, 404):
                            response.raise_for_status()
                        deleted.add(digest)
                    report.removed_from_registry.append(image)
    except httpx.HTTPStatusError as exc:
        raise TracksideError(
            f"registry {registry} answered {exc.response.status_code} to {exc.request.method} {exc.request.url}"
        ) from None
    except httpx.HTTPError as exc:
        raise Unavailable(f"registry {registry} is not reachable at {base}: {exc}") from None


def _repositories(http: httpx.Client) -> list[str]:
    """Every repository of the catalog, page by page (the registry caps a page at 1000)."""
    found: list[str] = []
    url: str | None = "/v2/_catalog?n=1000"
    while url:
        page = http.get(url)
        page.raise_for_status()
        found += page.json().get("repositories") or []
        url = page.links.get("next", {}).get("url")
    return found


def clean_engine(
    engine: DockerEngine,
    namespace: str,
    keep: set[tuple[str, str]],
    report: CleanReport,
    dry_run: bool = False,
    platform: str | None = None,
) -> None:
    """Remove this platform's job images (labelled with `platform`) that nothing keeps or runs."""
    filters = ["--filter", "label=racetrack-component=job"]
    if platform is not None:
        filters += ["--filter", f"label={LABEL_PLATFORM}={platform}"]
    listed = engine.run(["images", *filters, "--format", "{{json .}}"], what="listing images").stdout
    in_use = {line.strip() for line in engine.run(["ps", "-a", "--format", "{{.Image}}"]).stdout.splitlines()}
    for line in listed.splitlines():
        try:
            row: dict[str, Any] = json.loads(line)
        except ValueError:
            continue
        repo, tag = str(row.get("Repository", "")), str(row.get("Tag", ""))
        job = _repo_job(repo, namespace) or (_repo_job(repo.split("/", 1)[1], namespace) if "/" in repo else None)
        if job is None or tag in ("", "<none>"):
            continue
        image = f"{repo}:{tag}"
        if (job, tag) in keep or image in in_use:
            report.kept.append(f"{engine.url}: {image}")
            continue
        if not dry_run:
            engine.run(["rmi", image], check=False)
        report.removed_from_engines.append(f"{engine.url}: {image}")


def clean(
    settings: Settings, engines: Iterable[DockerEngine], keep: set[tuple[str, str]], dry_run: bool = False
) -> CleanReport:
    """Clean the registry's job repositories of `settings`' namespace, and this platform's images on `engines`.

    A registry holds no platform labels: platforms sharing one give each its own namespace."""
    report = CleanReport()
    namespace = (settings.docker_registry_namespace or "trackside").strip("/")
    registry = settings.docker_registry
    if registry:
        clean_registry(registry, namespace, keep, report, dry_run)
    seen: set[str] = set()
    for engine in engines:
        if engine.url in seen:
            continue
        seen.add(engine.url)
        clean_engine(engine, namespace, keep, report, dry_run, platform=platform_id(settings))
    return report
