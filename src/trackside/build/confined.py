"""Trees that a user controls (build contexts, git checkouts, plugin bundles), read and written without
ever following a link out of them.

Why not `os.path.realpath`: it resolves a name as text, and when `lstat` fails on the way (a path
longer than PATH_MAX, say) its non-strict mode takes the component for a plain directory and goes on.
Long nested directories plus short symlinks make a path the kernel follows out of the tree look, to
realpath, like a path deep inside it (CVE-2025-4517, the bypass of tarfile's `data` filter fixed in
CPython 3.11.13 and 3.12.11). We support Pythons without that fix, so nothing here relies on it:

- `TreeWriter` creates everything through directory file descriptors, opening each component with
  `O_NOFOLLOW` and each file with `O_EXCL`, so no write ever goes through a link, whatever is already
  on disk;
- `resolve_beneath` follows symlinks one at a time as the kernel would, each step relative to the
  root's descriptor, and refuses a step above the root, an absolute link, more than 40 links, or a name
  it can't `lstat` (too long is an error, never "probably a directory"). What it returns has no
  symlink in it, so reading it reads what was checked;
- `check_links_beneath` holds every symlink of a tree to that rule;
- `staged_directory` builds a tree beside its destination and moves it into place whole, or removes
  it: a refused or broken input leaves nothing half-made.
"""

from __future__ import annotations

import collections
import contextlib
import os
import secrets
import shutil
import stat
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

MAX_LINKS = 40  # the kernel's own limit on symlinks followed in one lookup
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1024 * 1024


class Escape(ValueError):
    """A path or link that leaves (or can't be proven to stay in) its tree; the message says why."""


def parts_of(relative: str) -> list[str]:
    """The components of a relative posix path, `.` and empty ones dropped; `..` kept."""
    return [part for part in relative.split("/") if part not in ("", ".")]


def resolve_beneath(root: Path, relative: str, max_links: int = MAX_LINKS) -> Path:
    """`root / relative` with every symlink expanded, or Escape if resolving it would leave `root`.

    Components that don't exist are taken as they are (nothing below them can be a link). The result
    is `realpath(root)` joined with plain names only, none of them a symlink at the time of the call.
    """
    if relative.startswith("/"):
        raise Escape(f"{relative!r} is an absolute path")
    base = Path(os.path.realpath(root))
    root_fd = os.open(base, _DIR_FLAGS)
    try:
        pending = collections.deque(relative.split("/"))
        stack: list[str] = []
        links = 0
        while pending:
            name = pending.popleft()
            if name in ("", "."):
                continue
            if name == "..":
                if not stack:
                    raise Escape(f"{relative!r} leads outside {base.name or base}")
                stack.pop()
                continue
            candidate = "/".join([*stack, name])
            try:
                mode = os.lstat(candidate, dir_fd=root_fd).st_mode
            except (FileNotFoundError, NotADirectoryError):
                stack.append(name)
                continue
            except OSError as exc:
                raise Escape(f"{relative!r} can't be resolved safely at {candidate!r}: {exc.strerror or exc}") from None
            if stat.S_ISLNK(mode):
                links += 1
                if links > max_links:
                    raise Escape(f"{relative!r} goes through more than {max_links} symbolic links")
                target = os.readlink(candidate, dir_fd=root_fd)
                if target.startswith("/"):
                    raise Escape(
                        f"{relative!r} goes through the symbolic link {candidate!r} to the absolute path {target!r}"
                    )
                pending.extendleft(reversed(target.split("/")))
                continue
            stack.append(name)
    finally:
        os.close(root_fd)
    return base.joinpath(*stack)


def check_links_beneath(root: Path) -> None:
    """Escape naming the first symlink under `root` that resolves outside it (or can't be resolved).

    The walk goes by directory descriptors (`os.fwalk`), so a tree deeper than PATH_MAX can't hide a
    link from it; an unreadable directory is an error, never skipped.
    """
    base = Path(os.path.realpath(root))

    def fail(error: OSError) -> None:
        raise Escape(f"{error.filename!r} can't be read safely: {error.strerror or error}")

    for dirpath, dirnames, filenames, dir_fd in os.fwalk(base, onerror=fail, follow_symlinks=False):
        for name in sorted(dirnames + filenames):
            if not stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                continue
            relative = os.path.relpath(os.path.join(dirpath, name), base)
            try:
                resolve_beneath(base, relative)
            except Escape as exc:
                target = os.readlink(name, dir_fd=dir_fd)
                raise Escape(f"symbolic link {relative!r} -> {target!r} that points outside: {exc}") from None


@contextlib.contextmanager
def staged_directory(dest: Path) -> Iterator[Path]:
    """A fresh directory beside `dest`, renamed to `dest` if the block succeeds and removed if it fails.

    `dest` must not exist, or be an empty directory. Parent directories made for it are removed again
    on failure, so nothing at all is left.
    """
    dest = Path(dest)
    if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
        raise FileExistsError(f"{dest} already exists and is not an empty directory")
    made = [parent for parent in dest.parents if not parent.exists()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.partial-{secrets.token_hex(6)}"
    staging.mkdir(mode=0o755)
    try:
        yield staging
        if dest.exists():
            dest.rmdir()
        os.rename(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for parent in made:  # innermost first
            with contextlib.suppress(OSError):
                parent.rmdir()
        raise


def _check_name(name: str) -> str:
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise Escape(f"{name!r} is not a file name")
    return name


class TreeWriter:
    """Creates files, directories and links under `root` without following any link on the way."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._fd = os.open(self.root, _DIR_FLAGS)

    def __enter__(self) -> TreeWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    @contextlib.contextmanager
    def _directory(self, parts: Sequence[str], create: bool) -> Iterator[int]:
        """A descriptor of the directory `parts` (made when `create`), reached without following links."""
        fd = self._fd
        try:
            for part in parts:
                _check_name(part)
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                if fd != self._fd:
                    os.close(fd)
                fd = child
            yield fd
        finally:
            if fd != self._fd:
                os.close(fd)

    def mkdir(self, parts: Sequence[str]) -> None:
        with self._directory(parts, create=True):
            pass

    def write_file(
        self, parts: Sequence[str], chunks: Iterable[bytes], mode: int = 0o644, mtime: float | None = None
    ) -> int:
        """Create a new file (never an existing one, never through a link); returns the bytes written."""
        *parents, name = parts
        written = 0
        with self._directory(parents, create=True) as parent:
            fd = os.open(
                _check_name(name),
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=parent,
            )
            try:
                for chunk in chunks:
                    view = memoryview(chunk)
                    while view:
                        count = os.write(fd, view)
                        view = view[count:]
                        written += count
                os.fchmod(fd, mode & 0o777)
                if mtime is not None:
                    os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)
        return written

    def symlink(self, parts: Sequence[str], target: str) -> None:
        *parents, name = parts
        with self._directory(parents, create=True) as parent:
            os.symlink(target, _check_name(name), dir_fd=parent)

    def hardlink(self, parts: Sequence[str], target: Sequence[str]) -> None:
        """A hard link to the regular file `target` (reached without links) at `parts`."""
        *parents, name = parts
        *target_parents, target_name = target
        with (
            self._directory(target_parents, create=False) as source_dir,
            self._directory(parents, create=True) as parent,
        ):
            mode = os.stat(_check_name(target_name), dir_fd=source_dir, follow_symlinks=False).st_mode
            if not stat.S_ISREG(mode):
                raise Escape(f"hard link target {'/'.join(target)!r} is not a regular file")
            os.link(target_name, _check_name(name), src_dir_fd=source_dir, dst_dir_fd=parent, follow_symlinks=False)


def read_chunks(handle: IO[bytes], limit: int | None = None) -> Iterator[bytes]:
    """Chunks of a binary file object, stopping with ValueError past `limit` bytes."""
    total = 0
    while True:
        chunk = handle.read(_CHUNK)
        if not chunk:
            return
        total += len(chunk)
        if limit is not None and total > limit:
            raise ValueError(f"more than the {limit} bytes it declared")
        yield chunk
