"""Build artifacts: what a build leaves for an infrastructure target to run.

A build of job NAME version VERSION is identified by its `tag` (UTC `%Y-%m-%dT%H%M%S` plus a short
suffix, as Racetrack's image tags). For container targets the artifact is an image named from the
tag; for the local target it is a directory under `{data_dir}/builds/{name}/{version}/{tag}/` with
`artifact.json` describing the command to run. This module is the one place that knows that layout,
so the builder writes and the local target reads through it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from trackside.errors import NotFound
from trackside.files import write_atomic

ARTIFACT_FILE = "artifact.json"


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
        return self.root / name / version / tag

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
            path = path / tag
        shutil.rmtree(path, ignore_errors=True)
