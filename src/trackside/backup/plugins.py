"""The plugins directory: bundles, their extracted files, dependencies and configs, as installed.

It is archived under the plugin store's own lock (`{plugins_dir}/.lock`, see
`trackside.plugins.store`), so an install or uninstall running meanwhile is either wholly in the
archive or not at all.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

from trackside.backup.archive import ArchiveWriter

PREFIX = "plugins"
LOCK_FILE = ".lock"


def add_plugins(writer: ArchiveWriter, plugins_dir: Path) -> None:
    if not plugins_dir.is_dir():
        return
    with open(plugins_dir / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            writer.add_tree(PREFIX, plugins_dir, skip=lambda p: p.name == LOCK_FILE and p.parent == plugins_dir)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
