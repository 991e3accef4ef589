"""Files in the data dir: written atomically, private ones mode 0600, names that can't escape.

A crash of the platform or the machine never leaves half a state file, key or secret behind.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from trackside.errors import InvalidInput

# Job names and versions become path segments: refuse anything that could escape the directory.
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def check_segment(value: str, what: str) -> str:
    if not isinstance(value, str) or not _SEGMENT.match(value) or ".." in value:
        raise InvalidInput(f"{what} {value!r} can't be used as a file name: use letters, digits and . _ + - only")
    return value


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_atomic(path: Path, data: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)  # the umask may have narrowed or the file pre-existed with other bits
    os.replace(tmp, path)


def write_private(path: Path, text: str) -> None:
    """Create `path` readable by its owner only; the mode is set at creation so no reader ever races it."""
    write_atomic(path, text, mode=0o600)


def read_or_create_private(path: Path, make: Callable[[], str]) -> str:
    """The content of `path`, created with `make()` on first use (two processes agree: first link wins)."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(make())
    try:
        os.link(tmp, path)  # fails if another process created it meanwhile: then use theirs
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return path.read_text(encoding="utf-8").strip()
