"""A job's requirements file, made safe to hand to the platform's installer.

A requirements file is the job's input, read by a process of the platform, so it may only say which
packages the job needs, not where the platform reads files or which hosts it trusts:

- `-r`/`-c` includes are read here, never by the installer, and only from files inside the job's
  directory (resolved link by link with `confined.resolve_beneath`); the result is one flat
  requirements text plus one constraints text, so the installer reads no file the job named;
- index options (`--index-url`/`-i`, `--extra-index-url`, `--find-links`/`-f`, `--no-index`,
  `--trusted-host`, ...) are refused, not applied, and the build log says which and where: package
  indexes are the operator's (`PackageIndexes`, from the settings `package_index_url`,
  `package_extra_index_urls`, `package_find_links`), passed to the installer on its command line;
- local path requirements (`.`, `./pkg`, `-e sub`, `file:...`) must lie inside the job's directory;
- direct URL and VCS requirements (`pkg @ https://...`, `git+https://...`) are allowed unless the
  operator turns them off (`allow_direct_requirements`); they are the only place where `${VAR}` may
  appear (Racetrack jobs put build secrets in git URLs), after a literal scheme, because the installer
  expands variables in paths and option values too, and the job chooses its build env.

The texts keep `${VAR}` unexpanded, so no secret is written out by us. Relative paths stay relative:
uv and pip resolve them against the working directory, which is the job's directory.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from trackside.build.confined import Escape, resolve_beneath
from trackside.errors import BuildFailed

MAX_FILE_BYTES = 1024 * 1024
MAX_FILES = 50
# Whole-line options that choose where packages come from, or what is trusted: the platform's to set.
REFUSED_OPTIONS = frozenset(
    {
        "-i",
        "--index-url",
        "--extra-index-url",
        "--index",
        "--default-index",
        "-f",
        "--find-links",
        "--no-index",
        "--trusted-host",
        "--cert",
        "--client-cert",
        "--proxy",
    }
)
INDEX_SETTINGS = "package_index_url, package_extra_index_urls, package_find_links"
# Installer settings a job's build env must not carry (they would redirect the installer).
INSTALLER_ENV_PREFIXES = ("UV_", "PIP_")

_INCLUDE = re.compile(r"^(?P<flag>-r|--requirement|-c|--constraint)(?:\s*=\s*|\s+|(?=[^\s=-]))(?P<path>\S+)$")
_EDITABLE = re.compile(r"^(?P<flag>-e|--editable)(?:\s*=\s*|\s+|(?=[^\s=-]))(?P<target>.+)$")
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
_ARCHIVE = re.compile(r"\.(whl|zip|tar\.gz|tgz|tar\.bz2|tar\.xz|tar)$", re.IGNORECASE)

Log = Callable[[str], None]


@dataclass(frozen=True)
class PackageIndexes:
    """Where job builds get packages: the operator's settings, given to the installer by the platform."""

    index_url: str = ""
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    allow_direct: bool = True

    @classmethod
    def from_settings(cls, settings: Any) -> PackageIndexes:
        if settings is None:
            return cls()
        return cls(
            index_url=str(getattr(settings, "package_index_url", "") or ""),
            extra_index_urls=tuple(str(u) for u in getattr(settings, "package_extra_index_urls", None) or ()),
            find_links=tuple(str(u) for u in getattr(settings, "package_find_links", None) or ()),
            allow_direct=bool(getattr(settings, "allow_direct_requirements", True)),
        )

    def installer_args(self) -> list[str]:
        """The same flags for `uv pip install` and `pip wheel`."""
        args: list[str] = []
        if self.index_url:
            args += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        for location in self.find_links:
            args += ["--find-links", location]
        return args

    def fingerprint(self) -> str:
        """What of these settings decides a virtualenv's content (part of its cache key)."""
        return repr((self.index_url, self.extra_index_urls, self.find_links))


@dataclass
class SafeRequirements:
    requirements: list[str] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    local: bool = False  # a local path requirement: what is installed depends on the source tree

    @property
    def requirements_text(self) -> str:
        return "".join(f"{line}\n" for line in self.requirements)

    @property
    def constraints_text(self) -> str:
        return "".join(f"{line}\n" for line in self.constraints)

    def write(self, directory: Path) -> tuple[Path, Path | None]:
        """The requirements (and constraints, if any) as files in `directory`, for the installer."""
        directory.mkdir(parents=True, exist_ok=True)
        requirements = directory / "requirements.txt"
        requirements.write_text(self.requirements_text)
        constraints = None
        if self.constraints:
            constraints = directory / "constraints.txt"
            constraints.write_text(self.constraints_text)
        return requirements, constraints

    def fingerprint(self, job_dir: Path, tree_hash: Callable[[Path], str]) -> str:
        text = self.requirements_text
        if self.constraints:
            text += "# constraints\n" + self.constraints_text
        if self.local:  # `-e .` or `./pkg`: the venv depends on this very source tree, at this path
            text += f"# local source {job_dir.resolve()} {tree_hash(job_dir)}\n"
        return text


def installer_env(job_env: dict[str, str], log: Log) -> dict[str, str]:
    """The job's build env without installer settings (UV_*, PIP_*), each refusal logged."""
    kept = {}
    for name, value in job_env.items():
        if name.upper().startswith(INSTALLER_ENV_PREFIXES):
            log(f"build env {name} refused: installer settings are the platform's ({INDEX_SETTINGS})")
            continue
        kept[name] = value
    return kept


def make_safe(requirements: Path, job_dir: Path, indexes: PackageIndexes, log: Log) -> SafeRequirements:
    """Read `requirements` (a file inside `job_dir`) and what it includes, under the rules above."""
    reader = _Reader(Path(job_dir), indexes, log)
    root = reader.root
    try:
        relative = Path(requirements).resolve().relative_to(root).as_posix()
    except ValueError:
        raise BuildFailed(f"requirements file {requirements} is not inside the job's directory") from None
    reader.read(relative, "requirements", where=None)
    return reader.result


class _Reader:
    def __init__(self, job_dir: Path, indexes: PackageIndexes, log: Log) -> None:
        self.root = job_dir.resolve()
        self.indexes = indexes
        self.log = log
        self.result = SafeRequirements()
        self.seen: set[tuple[Path, str]] = set()

    def read(self, relative: str, kind: str, where: str | None) -> None:
        try:
            path = resolve_beneath(self.root, relative)
        except Escape as exc:
            raise BuildFailed(f"{where or relative}: must be a file inside the job's directory ({exc})") from None
        if (path, kind) in self.seen:
            return
        self.seen.add((path, kind))
        if len(self.seen) > MAX_FILES:
            raise BuildFailed(f"{where}: more than {MAX_FILES} requirements files are included")
        name = path.relative_to(self.root).as_posix()
        try:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_FILE_BYTES + 1)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BuildFailed(f"{where or name}: requirements file {name!r} not found in the job's directory") from None
        if len(raw) > MAX_FILE_BYTES:
            raise BuildFailed(f"requirements file {name!r} is larger than {MAX_FILE_BYTES // 1024} KiB")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BuildFailed(f"requirements file {name!r} is not UTF-8 text") from None
        for number, line in _logical_lines(text):
            self._line(line, kind, f"{name}:{number}", Path(name).parent)

    def _line(self, line: str, kind: str, where: str, directory: Path) -> None:
        out = self.result.requirements if kind == "requirements" else self.result.constraints
        include = _INCLUDE.match(line)
        if include:
            target = include.group("path")
            flag = include.group("flag")
            if "$" in target or _URL.match(target) or target.startswith("~"):
                raise BuildFailed(f"{where}: {flag} {target!r} must name a file inside the job's directory")
            relative = self._relative(target, directory, where, f"{flag} {target!r}")
            self.read(relative, "constraints" if flag in ("-c", "--constraint") else kind, where)
            return
        first = line.split(maxsplit=1)[0]
        option = first.split("=", 1)[0]
        if option in REFUSED_OPTIONS or (re.match(r"^-[if]", option) and not option.startswith("--")):
            shown = option if option in REFUSED_OPTIONS else option[:2]
            self.log(f"{where}: option {shown} refused: package indexes are the platform's ({INDEX_SETTINGS})")
            return
        editable = _EDITABLE.match(line)
        spec = editable.group("target").strip() if editable else line
        self._check_tokens(spec, where)
        self._check_requirement(spec, where, editable is not None)
        out.append(line)

    def _check_tokens(self, spec: str, where: str) -> None:
        for token in spec.split()[1:]:
            if token.split("=", 1)[0] in REFUSED_OPTIONS:
                raise BuildFailed(f"{where}: option {token.split('=', 1)[0]} is not allowed in a requirement line")

    def _check_requirement(self, spec: str, where: str, editable: bool) -> None:
        body = spec.split(" --", 1)[0].split(";", 1)[0].strip()
        if body.startswith("-"):  # another option (--pre, --only-binary ...): harmless, passed on
            if "$" in body:
                raise BuildFailed(f"{where}: environment variables are only allowed in direct URLs")
            return
        name, at, url = body.partition("@")
        target = url.strip() if at and not _URL.match(body) else body
        scheme = _URL.match(target)
        if scheme and scheme.group("scheme").lower() != "file":
            if not self.indexes.allow_direct:
                raise BuildFailed(
                    f"{where}: direct URL and VCS requirements are refused on this platform "
                    "(setting allow_direct_requirements)"
                )
            return
        if "$" in body.split("://", 1)[0] or (not scheme and "$" in body):
            raise BuildFailed(f"{where}: environment variables are only allowed in direct URLs, after the scheme")
        if scheme or target.lower().startswith("file:"):
            self._local(_file_url_path(target, where), where)
        elif editable or _looks_like_path(target):
            self._local(re.sub(r"\[[^\]]*\]$", "", target.split("#", 1)[0]).strip(), where)

    def _local(self, target: str, where: str) -> None:
        relative = self._relative(target, Path("."), where, f"local path {target!r}")
        try:
            resolve_beneath(self.root, relative)
        except Escape as exc:
            raise BuildFailed(f"{where}: local path {target!r} must be inside the job's directory ({exc})") from None
        self.result.local = True

    def _relative(self, target: str, directory: Path, where: str, what: str) -> str:
        if target.startswith("~"):
            raise BuildFailed(f"{where}: {what} must be inside the job's directory")
        if target.startswith("/"):
            try:
                return Path(target).relative_to(self.root).as_posix()
            except ValueError:
                raise BuildFailed(f"{where}: {what} must be inside the job's directory") from None
        return (directory / target).as_posix()


def _file_url_path(url: str, where: str) -> str:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise BuildFailed(f"{where}: file URL {url!r} names another host")
    return unquote(parts.path)


def _looks_like_path(target: str) -> bool:
    return target.startswith((".", "/", "~")) or "/" in target or "\\" in target or bool(_ARCHIVE.search(target))


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) with continuations joined, comments dropped and whitespace collapsed."""
    lines: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        line = re.sub(r"(^|\s)#.*$", "", pending + raw).strip()
        pending = ""
        if line:
            lines.append((start, re.sub(r"\s+", " ", line)))
    if pending.strip():
        lines.append((start, re.sub(r"\s+", " ", pending).strip()))
    return lines
