"""Job secrets kept by the targets in the data dir (`trackside.infra.secrets`), archived as they are.

They stay encrypted with the platform's secrets key: the archive holds nothing in plain text unless
the keys are included too (`--include-keys`). Without the key, a restore keeps the files, but
they can be read again only under the old key; jobs with secrets then need a redeploy with them.
"""

from __future__ import annotations

from pathlib import Path

from trackside.backup.archive import ArchiveWriter
from trackside.infra.local.layout import LocalLayout


def secret_dirs(data_dir: Path) -> list[Path]:
    """The local target's secrets and every Docker target's (`infra/docker/{target}/secrets`)."""
    found = [LocalLayout(data_dir).secrets_root]
    docker = data_dir / "infra" / "docker"
    if docker.is_dir():
        found += sorted(p / "secrets" for p in docker.iterdir() if (p / "secrets").is_dir())
    return [p for p in found if p.is_dir()]


def add_secrets(writer: ArchiveWriter, data_dir: Path) -> None:
    for directory in secret_dirs(data_dir):
        writer.add_tree(f"data/{directory.relative_to(data_dir).as_posix()}", directory)
