"""Build artifacts: what a build leaves for an infrastructure target to run.

A build of job NAME version VERSION is identified by its `tag` (UTC `%Y-%m-%dT%H%M%S` plus a short
suffix, as Racetrack's image tags). For container targets the artifact is an image named from the
tag; for the local target it is a directory under `{data_dir}/builds/{name}/{version}/{tag}/` with
`artifact.json` describing the command to run. This module is the one place that knows that layout,
so the builder writes and the local target reads through it.

Workloads are deployed under a tag too. Usually it is the build's own tag; a reprovision (new
workloads from an existing build) on a target that runs two deployments of a version side by side
needs a tag of its own for the new ones, so it gets `BUILD_TAG+GENERATION`: `build_tag()` maps any
deployment tag back to the build it runs.
"""

from __future__ import annotations

import json
import secrets
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from trackside.errors import NotFound
from trackside.files import write_atomic

ARTIFACT_FILE = "artifact.json"
GENERATION_SEPARATOR = "+"


def new_tag() -> str:
    """A new build's tag: Racetrack's image tag format, plus a suffix so two builds in one second differ."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H%M%S") + "-" + secrets.token_hex(2)


def build_tag(tag: str) -> str:
    """The tag of the build that deployment tag `tag` runs."""
    return tag.partition(GENERATION_SEPARATOR)[0]


def new_generation(tag: str) -> str:
    """A deployment tag for new workloads of the build `tag` (`build_tag(result) == build_tag(tag)`)."""
    return f"{build_tag(tag)}{GENERATION_SEPARATOR}{secrets.token_hex(3)}"


@dataclass
class LocalArtifact:
    """A runnable local build: `command` run in `cwd` with `env` added to the job's environment."""

    command: list[str]
    cwd: str
    env: dict[str, str] = field(default_factory=dict)
    job_type_version: str = ""


class ArtifactStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "builds"

    def build_dir(self, name: str, version: str, tag: str) -> Path:
        return self.root / name / version / build_tag(tag)

    def save(self, name: str, version: str, tag: str, artifact: LocalArtifact) -> None:
        # Atomic: a crash never leaves a half-written artifact.
        write_atomic(self.build_dir(name, version, tag) / ARTIFACT_FILE, json.dumps(asdict(artifact), indent=2))

    def load(self, name: str, version: str, tag: str) -> LocalArtifact:
        path = self.build_dir(name, version, tag) / ARTIFACT_FILE
        if not path.is_file():
            raise NotFound(f"no local build of job {name} {version} tagged {tag}")
        return LocalArtifact(**json.loads(path.read_text()))

    def remove(self, name: str, version: str, tag: str | None = None) -> None:
        path = self.root / name / version
        if tag:
            path = path / build_tag(tag)
        shutil.rmtree(path, ignore_errors=True)

    def remove_others(self, name: str, version: str, keep: str) -> None:
        """Remove every build of the version but the one deployment tag `keep` runs."""
        root = self.root / name / version
        if root.is_dir():
            for child in root.iterdir():
                if child.name != build_tag(keep):
                    shutil.rmtree(child, ignore_errors=True)
