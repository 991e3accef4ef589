"""Data shared between components: jobs, families, secrets, deployment records.

These are the shapes the plugin interface (docs/architecture.md, "The plugin interface") passes around, so
infrastructure targets and job types from plugins see the same objects as the built-in ones. The lifecycle API
serialises `JobDto` with `to_api()` into Racetrack's JSON shape.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any


class JobStatus(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    ERROR = "error"
    LOST = "lost"
    ORPHANED = "orphaned"


class DeploymentStatus(enum.StrEnum):
    IN_PROGRESS = "in_progress"
    DONE = "done"
    FAILED = "failed"


@dataclass
class JobFamilyDto:
    name: str
    id: str = ""


@dataclass
class JobSecrets:
    git_credentials: dict[str, str] | None = None
    secret_build_env: dict[str, str] = field(default_factory=dict)
    secret_runtime_env: dict[str, str] = field(default_factory=dict)


@dataclass
class JobDto:
    """A job version as the lifecycle knows it and as infrastructure targets report it.

    `internal_name` is `host:port` of one replica the gateway may call; `replica_internal_names`
    lists every replica (the gateway balances over them).
    """

    name: str
    version: str
    status: str = JobStatus.STARTING.value
    id: str = ""
    create_time: int = 0
    update_time: int = 0
    manifest: dict[str, Any] | None = None
    manifest_yaml: str | None = None
    internal_name: str | None = None
    pub_url: str | None = None
    error: str | None = None
    notice: str | None = None
    image_tag: str | None = None
    deployed_by: str | None = None
    last_call_time: int | None = None
    infrastructure_target: str | None = None
    replica_internal_names: list[str] = field(default_factory=list)
    job_type_version: str | None = None
    infrastructure_stats: dict[str, Any] = field(default_factory=dict)
    # What the serving build was built from: a git commit, or `sha256:...` of an uploaded context.
    source_version: str | None = None

    def to_api(self) -> dict[str, Any]:
        """Racetrack's JobDto JSON shape. Shallow: nested values are shared, not copied (listing
        10,000 jobs would otherwise deep-copy every manifest)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
