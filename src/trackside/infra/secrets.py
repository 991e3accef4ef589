"""Job secrets kept by a target in the data dir: encrypted files readable by the owner only.

Neither the local target nor a Docker engine without swarm has a secret store of its own, so both
keep a job's secrets here: `{root}/{name}/{version}.json` holds the JobSecrets the lifecycle saves,
and `{version}.runtime.json` the secret environment of running replicas (needed to restart them).
Files are Fernet-encrypted with the platform's secrets key (`trackside.auth.crypto`) and mode 0600.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

from trackside.auth.crypto import SecretBox, load_secret_box
from trackside.domain import JobSecrets
from trackside.errors import NotFound
from trackside.files import check_segment, write_atomic


class SecretFileStore:
    def __init__(self, root: Path, data_dir: Path, target: str) -> None:
        self.root = Path(root)
        self.data_dir = Path(data_dir)
        self.target = target
        self._box: SecretBox | None = None

    @property
    def box(self) -> SecretBox:
        if self._box is None:
            self._box = load_secret_box(self.data_dir)
        return self._box

    def secrets_file(self, name: str, version: str) -> Path:
        return self.root / check_segment(name, "job name") / f"{check_segment(version, 'job version')}.json"

    def runtime_secrets_file(self, name: str, version: str) -> Path:
        return self.root / check_segment(name, "job name") / f"{check_segment(version, 'job version')}.runtime.json"

    def save(self, name: str, version: str, secrets: JobSecrets) -> None:
        self._write(self.secrets_file(name, version), dataclasses.asdict(secrets))

    def get(self, name: str, version: str) -> JobSecrets:
        try:
            raw = json.loads(self.box.decrypt(self.secrets_file(name, version).read_text()))
        except FileNotFoundError:
            raise NotFound(f"no secrets saved for job {name} {version} on the {self.target} target") from None
        return JobSecrets(
            git_credentials=raw.get("git_credentials"),
            secret_build_env=dict(raw.get("secret_build_env") or {}),
            secret_runtime_env=dict(raw.get("secret_runtime_env") or {}),
        )

    def save_runtime_env(self, name: str, version: str, env: dict[str, str]) -> None:
        self._write(self.runtime_secrets_file(name, version), env)

    def load_runtime_env(self, name: str, version: str) -> dict[str, str]:
        try:
            return dict(json.loads(self.box.decrypt(self.runtime_secrets_file(name, version).read_text())))
        except FileNotFoundError:
            return {}

    def remove(self, name: str, version: str) -> None:
        for path in (self.secrets_file(name, version), self.runtime_secrets_file(name, version)):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # other versions keep their secrets there
            self.secrets_file(name, version).parent.rmdir()

    def _write(self, path: Path, data: object) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(path, self.box.encrypt(json.dumps(data)), mode=0o600)
