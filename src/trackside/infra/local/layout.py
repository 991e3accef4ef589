"""Where the local target keeps its files under the data dir.

One place knows the layout, so the deployer, the watcher, the monitor and the logs streamer agree:

    {data_dir}/infra/local/jobs/{name}/{version}/replica-{i}.json   replica state (no secret values)
    {data_dir}/infra/local/secrets/{name}/{version}.json            JobSecrets (mode 0600)
    {data_dir}/infra/local/secrets/{name}/{version}.runtime.json    secret env of running replicas
    {data_dir}/infra/local/owner.lock                              flock held by the supervising process
    {data_dir}/logs/jobs/{name}/{version}/replica-{i}.log          job output (rotated: .log.1, .log.2, ...)
"""

from __future__ import annotations

import re
from pathlib import Path

from trackside.files import check_segment

_REPLICA_FILE = re.compile(r"^replica-(\d+)\.json$")


class LocalLayout:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / "infra" / "local"
        self.state_root = self.root / "jobs"
        self.secrets_root = self.root / "secrets"
        self.logs_root = self.data_dir / "logs" / "jobs"
        self.lock_file = self.root / "owner.lock"

    def job_state_dir(self, name: str, version: str) -> Path:
        return self.state_root / check_segment(name, "job name") / check_segment(version, "job version")

    def state_file(self, name: str, version: str, index: int) -> Path:
        return self.job_state_dir(name, version) / f"replica-{index}.json"

    def job_log_dir(self, name: str, version: str) -> Path:
        return self.logs_root / check_segment(name, "job name") / check_segment(version, "job version")

    def log_file(self, name: str, version: str, index: int) -> Path:
        return self.job_log_dir(name, version) / f"replica-{index}.log"

    def state_files(self) -> list[tuple[str, str, int, Path]]:
        """Every replica state file as (name, version, index, path)."""
        found: list[tuple[str, str, int, Path]] = []
        if not self.state_root.is_dir():
            return found
        for name_dir in self.state_root.iterdir():
            if not name_dir.is_dir():
                continue
            for version_dir in name_dir.iterdir():
                if not version_dir.is_dir():
                    continue
                for path in version_dir.iterdir():
                    match = _REPLICA_FILE.match(path.name)
                    if match:
                        found.append((name_dir.name, version_dir.name, int(match.group(1)), path))
        return found
