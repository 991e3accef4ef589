"""The local build context: a job directory packed as a base64 gzip tarball for POST /deploy.

Racetrack's client sends the workdir honouring `.gitignore`; we do the same with simple fnmatch
rules (see `IgnoreRules`) so that virtualenvs, caches and VCS data stay home. Symlinks are kept as
links only when they point inside the directory (rewritten relative); a link that leaves it, or
dangles, is skipped and reported, so a deploy never ships a file from outside the job directory.
The manifest's secret env files are never packed: they travel in the request's secret fields.
The archive is deterministic for identical content (sorted entries, no owner names, gzip mtime 0),
which keeps the server's content-addressed build cache effective.
"""

from __future__ import annotations

import base64
import fnmatch
import gzip
import io
import os
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from trackside.errors import InvalidInput

DEFAULT_IGNORES: tuple[str, ...] = (".git/", "__pycache__/", ".venv/", "*.pyc")
IGNORE_FILES: tuple[str, ...] = (".gitignore", ".racetrackignore")


@dataclass(frozen=True)
class IgnoreRule:
    pattern: str
    negated: bool
    dir_only: bool
    anchored: bool

    def matches(self, relpath: str, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        if self.anchored:
            return fnmatch.fnmatchcase(relpath, self.pattern)
        return fnmatch.fnmatchcase(relpath.rsplit("/", 1)[-1], self.pattern)


def parse_ignore_line(line: str) -> IgnoreRule | None:
    """One `.gitignore` line as a rule; None for blanks and comments.

    Semantics (a practical subset of git's): `!` re-includes, a trailing `/` matches directories
    only, a pattern with a `/` elsewhere is anchored at the root, otherwise it matches a name at
    any depth; `*`, `?` and `[...]` are fnmatch wildcards (`**/` prefixes are treated as unanchored).
    """
    text = line.rstrip("\n").rstrip()
    if not text or text.startswith("#"):
        return None
    negated = text.startswith("!")
    if negated:
        text = text[1:]
    text = text.removeprefix("\\")
    dir_only = text.endswith("/")
    text = text.rstrip("/")
    while text.startswith("**/"):
        text = text[3:]
    anchored = "/" in text
    text = text.lstrip("/")
    if not text:
        return None
    return IgnoreRule(text, negated, dir_only, anchored)


@dataclass
class IgnoreRules:
    rules: list[IgnoreRule] = field(default_factory=list)

    @classmethod
    def for_directory(cls, root: Path) -> IgnoreRules:
        """The default exclusions plus the rules of `.gitignore` / `.racetrackignore` at `root`."""
        lines = list(DEFAULT_IGNORES)
        for name in IGNORE_FILES:
            path = root / name
            if path.is_file():
                try:
                    lines.extend(path.read_text(encoding="utf-8").splitlines())
                except (OSError, UnicodeDecodeError) as exc:
                    raise InvalidInput(f"cannot read {path}: {exc}") from None
        return cls([rule for line in lines if (rule := parse_ignore_line(line)) is not None])

    def ignored(self, relpath: str, is_dir: bool) -> bool:
        """Whether `relpath` (posix, relative to the root) is excluded; the last matching rule wins."""
        result = False
        for rule in self.rules:
            if rule.matches(relpath, is_dir):
                result = not rule.negated
        return result


@dataclass
class BuildContext:
    data: bytes
    files: list[str]
    skipped_links: list[str]

    def to_base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def pack_directory(directory: Path, exclude: Iterable[Path] = ()) -> BuildContext:
    """Pack `directory` into a gzip tarball of its non-ignored files, never leaving the directory.

    Files in `exclude` (the manifest's secret env files: they travel in the deploy request's
    `secret_vars`, encrypted at rest by the platform) are left out whatever the ignore rules say.
    """
    root = Path(directory).resolve()
    if not root.is_dir():
        raise InvalidInput(f"build context {directory}: not a directory")
    excluded = {Path(path).resolve() for path in exclude}
    rules = IgnoreRules.for_directory(root)
    buffer = io.BytesIO()
    files: list[str] = []
    skipped: list[str] = []
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=6) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            current = Path(dirpath)
            rel_dir = current.relative_to(root).as_posix()
            prefix = "" if rel_dir == "." else rel_dir + "/"
            kept_dirs = []
            for name in sorted(dirnames):
                full = current / name
                relpath = prefix + name
                if full.is_symlink():
                    filenames.append(name)  # a link to a directory is archived as a link, not walked
                    continue
                if not rules.ignored(relpath, is_dir=True):
                    kept_dirs.append(name)
                    _add(tar, full, relpath)
            dirnames[:] = kept_dirs
            for name in sorted(filenames):
                full = current / name
                relpath = prefix + name
                is_link = full.is_symlink()
                if rules.ignored(relpath, is_dir=not is_link and full.is_dir()):
                    continue
                if not is_link and full.resolve() in excluded:
                    continue
                if is_link:
                    target = full.resolve()
                    if not target.exists() or not _inside(target, root):
                        skipped.append(relpath)
                        continue
                    _add_link(tar, full, relpath, os.path.relpath(target, full.parent.resolve()))
                elif full.is_file():
                    _add(tar, full, relpath)
                    files.append(relpath)
    return BuildContext(buffer.getvalue(), files, skipped)


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add(tar: tarfile.TarFile, full: Path, relpath: str) -> None:
    try:
        info = _normalise(tar.gettarinfo(str(full), arcname=relpath))
        if info.isfile():
            with open(full, "rb") as handle:
                tar.addfile(info, handle)
        else:
            tar.addfile(info)
    except OSError as exc:
        raise InvalidInput(f"build context: cannot read {full}: {exc.strerror or exc}") from None


def _add_link(tar: tarfile.TarFile, full: Path, relpath: str, linkname: str) -> None:
    info = _normalise(tar.gettarinfo(str(full), arcname=relpath))
    info.type = tarfile.SYMTYPE
    info.linkname = linkname
    info.size = 0
    tar.addfile(info)
