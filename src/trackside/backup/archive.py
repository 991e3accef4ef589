"""The archive file: a gzipped tar, written atomically and read back without trusting it.

Writing goes to a hidden temporary file beside the destination, which becomes the archive only
once complete (a crash or an error leaves no archive, never half of one), is readable by its owner
alone (it holds encrypted secrets, and keys when asked), and never replaces an existing file
unless the caller forces it.

Reading extracts into an empty staging directory: member names must stay inside it, only regular
files, directories and symbolic links are accepted (virtualenvs link to their interpreter), links
are made last so that no file is ever written through one, and every file's checksum must match
the manifest, which must list exactly the files found.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import IO

from trackside.backup.manifest import MANIFEST_NAME, MARKER_NAME, BackupManifest, marker_bytes
from trackside.errors import InvalidInput

# Top-level members of an archive: anything else is refused on reading.
SECTIONS = ("database", "plugins", "data", "keys")
_CHUNK = 1024 * 1024


def is_inside(path: Path, directory: Path) -> bool:
    path, directory = path.resolve(), directory.resolve()
    return path == directory or directory in path.parents


class _HashingReader(io.RawIOBase):
    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        return data


class ArchiveWriter:
    """Members added one by one; `commit()` writes the manifest and puts the archive in place."""

    def __init__(self, destination: Path, *, force: bool, forbidden: list[Path]) -> None:
        self.destination = Path(os.path.abspath(destination))
        check_destination(self.destination, force=force, forbidden=forbidden)
        self.force = force
        self.files: dict[str, str] = {}
        self.tmp = self.destination.with_name(f".{self.destination.name}.{os.getpid()}.tmp")
        fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._raw = os.fdopen(fd, "wb")
        self._tar = tarfile.open(  # noqa: SIM115 - closed by commit() or abort()
            fileobj=self._raw, mode="w:gz", format=tarfile.PAX_FORMAT, compresslevel=6
        )
        self._add_bytes(MARKER_NAME, marker_bytes(), record=False)

    def add_bytes(self, name: str, data: bytes) -> None:
        self._add_bytes(name, data, record=True)

    def _add_bytes(self, name: str, data: bytes, *, record: bool) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o600
        self._tar.addfile(info, io.BytesIO(data))
        if record:
            self.files[name] = hashlib.sha256(data).hexdigest()

    def add_file(self, name: str, path: Path) -> bool:
        """Add one file or link as `name`; False when it vanished meanwhile (a deploy removed it)."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(path)
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
            self._tar.addfile(info)
            self.files[name] = "link:" + target
            return True
        if not stat.S_ISREG(st.st_mode):
            return True  # sockets, fifos, locks' devices: nothing to keep
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below, after the tar has read it
        except FileNotFoundError:
            return False
        with handle:
            fst = os.fstat(handle.fileno())
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = fst.st_size, stat.S_IMODE(fst.st_mode), int(fst.st_mtime)
            reader = _HashingReader(handle)
            try:
                self._tar.addfile(info, reader)
            except OSError as exc:  # it shrank while being read
                raise InvalidInput(
                    f"{path} changed while it was being backed up ({exc}); run the backup again"
                ) from None
        self.files[name] = reader.digest.hexdigest()
        return True

    def add_tree(self, prefix: str, root: Path, skip: Callable[[Path], bool] = lambda _p: False) -> None:
        """Every file and link under `root` as `prefix/relative path` (links are kept, never followed)."""
        if not root.is_dir():
            return
        for directory, dirnames, filenames in os.walk(root):
            here = Path(directory)
            dirnames.sort()
            for entry in [*list(dirnames), *sorted(filenames)]:
                path = here / entry
                if skip(path):
                    if entry in dirnames:
                        dirnames.remove(entry)
                    continue
                name = f"{prefix}/{path.relative_to(root).as_posix()}"
                if entry in dirnames and not path.is_symlink():
                    self._add_directory(name, path)  # walked into next; kept even when empty
                    continue
                self.add_file(name, path)

    def _add_directory(self, name: str, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, stat.S_IMODE(os.lstat(path).st_mode)
            self._tar.addfile(info)

    def commit(self, manifest: BackupManifest) -> None:
        manifest.files = dict(self.files)
        self._add_bytes(MANIFEST_NAME, manifest.to_bytes(), record=False)
        self._tar.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        if self.force:
            os.replace(self.tmp, self.destination)
        else:
            try:
                os.link(self.tmp, self.destination)  # never over a file that appeared meanwhile
            except FileExistsError:
                self.abort()
                raise InvalidInput(f"{self.destination} exists: choose another file or pass --force") from None
            os.unlink(self.tmp)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._tar.close()
        with contextlib.suppress(Exception):
            self._raw.close()
        self.tmp.unlink(missing_ok=True)


def check_destination(destination: Path, *, force: bool, forbidden: list[Path]) -> None:
    if destination.is_dir():
        raise InvalidInput(f"{destination} is a directory: name the archive file to write")
    if not destination.parent.is_dir():
        raise InvalidInput(f"{destination.parent} does not exist: create it first")
    for directory in forbidden:
        if is_inside(destination, directory):
            raise InvalidInput(
                f"{destination} is inside {directory}, which the backup archives: write it somewhere else"
            )
    if destination.exists() and not force:
        raise InvalidInput(f"{destination} exists: choose another file or pass --force")


def _member_path(name: str, archive: Path) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or path.parts[0] not in SECTIONS:
        raise InvalidInput(f"{archive}: unexpected member {name!r}; not a Trackside backup, or tampered with")
    return path


def _damaged(archive: Path, exc: BaseException) -> InvalidInput:
    return InvalidInput(
        f"{archive}: not a readable Trackside backup (damaged or truncated: {exc or type(exc).__name__})"
    )


def extract(archive: Path, staging: Path) -> BackupManifest:
    """Extract `archive` into the empty directory `staging`, checking everything; its manifest."""
    if not archive.is_file():
        raise InvalidInput(f"{archive}: no such file")
    found: dict[str, str] = {}
    links: list[tuple[PurePosixPath, str]] = []
    manifest_data: bytes | None = None
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            first = tar.next()
            if first is None or first.name != MARKER_NAME:
                raise InvalidInput(f"{archive}: not a Trackside backup (made by `trackside admin backup`)")
            for member in tar:
                if member is first:
                    continue  # iterating starts over with the members already read
                if member.name == MANIFEST_NAME and member.isfile():
                    handle = tar.extractfile(member)
                    manifest_data = handle.read() if handle else b""
                    continue
                path = _member_path(member.name, archive)
                if member.name in found:
                    raise InvalidInput(f"{archive}: member {member.name!r} appears twice; tampered with")
                target = staging.joinpath(*path.parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue  # directories are not in the manifest: any may be empty
                if member.issym():
                    links.append((path, member.linkname))
                    found[member.name] = "link:" + member.linkname
                elif member.isfile():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    found[member.name] = _write_member(tar, member, target)
                else:
                    raise InvalidInput(
                        f"{archive}: member {member.name!r} is not a file, directory or symbolic link; refused"
                    )
    except InvalidInput:
        raise
    except (tarfile.TarError, EOFError, zlib.error, ValueError) as exc:
        raise _damaged(archive, exc) from None
    if manifest_data is None:
        raise InvalidInput(f"{archive}: the backup manifest is missing (the archive is truncated or damaged)")
    manifest = BackupManifest.from_bytes(manifest_data, str(archive))
    missing = sorted(set(manifest.files) - set(found))
    extra = sorted(set(found) - set(manifest.files))
    changed = sorted(n for n in set(found) & set(manifest.files) if found[n] != manifest.files[n])
    for what, names in (("missing", missing), ("not in its manifest", extra), ("changed (checksum)", changed)):
        if names:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            raise InvalidInput(f"{archive}: damaged: {what}: {shown}")
    for path, link_target in links:
        _make_link(staging, path, link_target, archive)
    return manifest


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> str:
    source = tar.extractfile(member)
    digest = hashlib.sha256()
    mode = stat.S_IMODE(member.mode) & 0o777  # no setuid, setgid or sticky bits from an archive
    # O_EXCL and O_NOFOLLOW: never through a link, never over a file written before.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        while source is not None and (chunk := source.read(_CHUNK)):
            digest.update(chunk)
            out.write(chunk)
    os.chmod(target, mode or 0o600)
    return digest.hexdigest()


def _make_link(staging: Path, path: PurePosixPath, link_target: str, archive: Path) -> None:
    target = staging.joinpath(*path.parts)
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    # The link's own directory must be reached through no link (a link made earlier can't redirect it).
    if os.path.realpath(parent) != os.path.abspath(parent):
        raise InvalidInput(f"{archive}: link {path} lies behind another link; tampered with")
    try:
        os.symlink(link_target, target)
    except FileExistsError:
        raise InvalidInput(f"{archive}: link {path} collides with a file; tampered with") from None
