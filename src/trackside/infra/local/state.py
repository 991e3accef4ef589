"""Replica state files: what the local target started, so a restarted platform can find it again.

The files are the source of truth for what should run (docs/architecture.md, "The store is the source of truth":
nothing important lives only in memory). Secret values are never written here; `secret_env_keys` names them and the
secrets module holds the values.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trackside.files import write_atomic

log = logging.getLogger(__name__)


@dataclass
class ReplicaState:
    name: str
    version: str
    index: int
    pid: int
    port: int
    tag: str
    command: list[str]
    cwd: str  # the build's working directory (its entries are linked into the replica's own)
    # The replica's whole environment minus secret values (those are in the secrets module).
    env: dict[str, str] = field(default_factory=dict)
    secret_env_keys: list[str] = field(default_factory=list)
    deployment_timestamp: int = 0
    start_time: float = 0.0
    restart_count: int = 0
    last_exit_code: int | None = None
    error: str | None = None
    job_type_version: str = ""
    # Set when `trackside up` stopped the replica on shutdown: it runs again at the next start.
    stopped_by_shutdown: bool = False
    # The replica's own directory outside the data dir (replica_dirs.py) and, in users mode, its uid.
    home: str = ""
    uid: int | None = None


def write_state(path: Path, state: ReplicaState) -> None:
    write_atomic(path, json.dumps(dataclasses.asdict(state), indent=2))


def read_state(path: Path) -> ReplicaState | None:
    """The state in `path`, or None when it is missing or unreadable (logged: a broken file is skipped)."""
    try:
        raw: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("local target: ignoring unreadable replica state %s: %s", path, exc)
        return None
    known = {f.name for f in dataclasses.fields(ReplicaState)}
    try:
        return ReplicaState(**{k: v for k, v in raw.items() if k in known})
    except TypeError as exc:
        log.warning("local target: ignoring incomplete replica state %s: %s", path, exc)
        return None
