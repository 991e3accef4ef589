"""The archive's manifest: what a backup holds, where it came from, and a checksum of every file.

The archive starts with a small marker member (so a wrong file is refused at once) and ends with
the manifest, which lists every member's SHA-256: a restore checks each one and refuses an archive
where anything is missing, extra or changed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from trackside.errors import InvalidInput

FORMAT: Literal["trackside-backup"] = "trackside-backup"
FORMAT_VERSION = 1
MARKER_NAME = "trackside-backup"
MANIFEST_NAME = "manifest.json"


class ImageEntry(BaseModel):
    """A job version running from an image on a container target."""

    job_name: str
    job_version: str
    target: str
    tag: str
    image: str
    digest: str = ""  # the image's RepoDigest (or local image id) when the engine could be asked


class JobEntry(BaseModel):
    name: str
    version: str
    status: str
    target: str
    tag: str


class BackupManifest(BaseModel):
    format: Literal["trackside-backup"] = FORMAT
    format_version: int = FORMAT_VERSION
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    trackside_version: str = ""
    # The data dir and plugins dir it was made from: paths in builds and replica states are moved
    # from these to the restoring platform's.
    data_dir: str
    plugins_dir: str
    database: Literal["sqlite", "postgresql"]
    schema_revision: str = ""
    includes_keys: bool = False
    jobs: list[JobEntry] = Field(default_factory=list)
    images: list[ImageEntry] = Field(default_factory=list)
    # member name -> sha256 hex of its content (regular files); links map to "link:" + target.
    files: dict[str, str] = Field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return json.dumps(self.model_dump(), indent=1, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes, archive: str) -> BackupManifest:
        try:
            raw = json.loads(data)
        except ValueError as exc:
            raise InvalidInput(f"{archive}: the backup manifest is not JSON ({exc}); the archive is damaged") from None
        if isinstance(raw, dict) and raw.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
            raise InvalidInput(
                f"{archive}: made by a newer Trackside (backup format {raw.get('format_version')}); "
                f"restore it with that version"
            )
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InvalidInput(f"{archive}: the backup manifest is not valid ({where}: {first['msg']})") from None


def marker_bytes() -> bytes:
    return json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION}).encode()
