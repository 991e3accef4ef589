"""Fetching a job's source: an uploaded build context (base64 tar.gz) or a shallow git clone.

Both inputs come from users, so both are treated as hostile: archive members may not leave the
destination (absolute paths, `..`, links pointing out, devices), archives are capped in size and member
count, git never prompts and never runs longer than a deadline, and credentials never reach a log or
an error message.

An uploaded build context is the job's own directory (Racetrack's client tars the directory holding
job.yaml), so it is unpacked at `git.directory` inside the workspace: the job runs from the same
relative place whether its source came from git or from an upload.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import io
import os
import posixpath
import re
import shutil
import subprocess
import tarfile
import zlib
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit, urlunsplit

from trackside.build.confined import (
    Escape,
    TreeWriter,
    check_links_beneath,
    parts_of,
    read_chunks,
    resolve_beneath,
    staged_directory,
)
from trackside.errors import BuildFailed, InvalidInput

_COMMIT = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")  # a full SHA-1 or SHA-256 object name
MAX_CONTEXT_BYTES = 500 * 1024 * 1024
MAX_CONTEXT_MEMBERS = 100_000
GIT_TIMEOUT_S = 120.0
_BAD_CONTEXT = "build context is not a base64-encoded tar.gz"


# --- uploaded build context -------------------------------------------------------------------


def extract_build_context(
    b64_targz: str,
    dest: Path,
    *,
    max_bytes: int = MAX_CONTEXT_BYTES,
    max_members: int = MAX_CONTEXT_MEMBERS,
    leave_out: Collection[str] = (),
) -> list[str]:
    """Unpack a base64 tar.gz into `dest` (which must not exist yet, or be empty), never outside it.

    The whole archive is checked before anything is written (see `_plan`), then written through
    `TreeWriter`, which follows no link; it is unpacked beside `dest` and moved into place, so a refused
    or broken archive leaves nothing. Members named in `leave_out` (relative paths: the job's secret env
    files) are not written; their names are returned.
    """
    try:
        raw = base64.b64decode("".join(b64_targz.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"{_BAD_CONTEXT}: invalid base64 ({exc})") from exc
    if raw[:2] != b"\x1f\x8b":
        raise InvalidInput(f"{_BAD_CONTEXT}: the decoded data is not gzip-compressed")
    skip = {"/".join(parts_of(name)) for name in leave_out if name and not name.startswith("/")}
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
            plan = _plan(tar, max_bytes, max_members, skip)
            with staged_directory(dest) as staging, TreeWriter(staging) as writer:
                for item in plan.ordered():
                    _write(tar, writer, item)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise InvalidInput(f"{_BAD_CONTEXT}: {exc}") from exc
    return sorted(plan.left_out)


@dataclass
class _Member:
    info: tarfile.TarInfo
    parts: list[str]
    kind: str  # "dir" | "file" | "symlink" | "hardlink"
    link_parts: list[str] = field(default_factory=list)


@dataclass
class _Plan:
    members: list[_Member] = field(default_factory=list)
    left_out: set[str] = field(default_factory=set)

    def ordered(self) -> list[_Member]:
        """Directories, then files, then hard links, then symlinks: no link exists while files are written."""
        rank = {"dir": 0, "file": 1, "hardlink": 2, "symlink": 3}
        return sorted(self.members, key=lambda m: rank[m.kind])


def _reject(name: str, why: str) -> InvalidInput:
    return InvalidInput(f"build context member {name!r} is not allowed: {why}")


def _plan(tar: tarfile.TarFile, max_bytes: int, max_members: int, skip: set[str]) -> _Plan:
    """Every member checked against every other, before anything is written."""
    plan = _Plan()
    kinds: dict[str, str] = {}  # normalized name -> kind
    total = 0
    count = 0
    for info in tar:
        count += 1
        if count > max_members:
            raise InvalidInput(f"build context has more than {max_members} members")
        member = _classify(info)
        key = "/".join(member.parts)
        if key in skip or (member.kind == "hardlink" and "/".join(member.link_parts) in skip):
            plan.left_out.add(key)
            continue
        if not member.parts:
            if member.kind == "dir":
                continue  # the root itself ("./")
            raise _reject(info.name, "it names the build context's root")
        if key in kinds and not (kinds[key] == "dir" and member.kind == "dir"):
            raise _reject(info.name, "it appears twice in the archive")
        kinds[key] = member.kind
        if member.kind == "file":
            total += max(info.size, 0)
            if total > max_bytes:
                raise InvalidInput(f"build context is larger than {max_bytes // (1024 * 1024)} MB when unpacked")
        plan.members.append(member)
    for member in plan.members:
        _check_parents(member, kinds)
        if member.kind == "symlink":
            _check_symlink(member, kinds)
        elif member.kind == "hardlink":
            _check_hardlink(member, kinds)
    return plan


def _classify(info: tarfile.TarInfo) -> _Member:
    name = info.name
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise _reject(name, "absolute path")
    parts = parts_of(name)
    if ".." in parts:
        if _escapes(name):
            raise _reject(name, "path escapes the build context (..)")
        raise _reject(name, "'..' in a member name is not allowed")
    if any("\0" in part for part in parts):
        raise _reject(name, "NUL in a member name")
    if info.isdev():
        raise _reject(name, "device files and fifos are not allowed")
    if info.isdir():
        return _Member(info, parts, "dir")
    if info.isreg():
        return _Member(info, parts, "file")
    if info.issym():
        target = info.linkname
        if not target or target.startswith("/") or _escapes(posixpath.join(posixpath.dirname(name), target)):
            raise _reject(name, f"symlink to {target!r} points outside the build context")
        return _Member(info, parts, "symlink")
    if info.islnk():
        target = info.linkname
        if not target or target.startswith("/") or _escapes(target) or ".." in parts_of(target):
            raise _reject(name, f"hard link to {target!r} points outside the build context")
        return _Member(info, parts, "hardlink", parts_of(target))
    raise _reject(name, "only regular files, directories and links are allowed")


def _check_parents(member: _Member, kinds: dict[str, str]) -> None:
    """No member is written through a symlink, or below a file."""
    for depth in range(1, len(member.parts)):
        prefix = "/".join(member.parts[:depth])
        kind = kinds.get(prefix, "dir")
        if kind == "symlink":
            raise _reject(member.info.name, f"it would be written through the symbolic link {prefix!r}")
        if kind != "dir":
            raise _reject(member.info.name, f"its parent {prefix!r} is not a directory")


def _check_symlink(member: _Member, kinds: dict[str, str]) -> None:
    """The target, walked from the link's directory, stays inside and passes through no other link."""
    target = member.info.linkname
    stack = member.parts[:-1]
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not stack:
                raise _reject(member.info.name, f"symlink to {target!r} points outside the build context")
            stack.pop()
            continue
        stack.append(part)
        through = "/".join(stack)
        if kinds.get(through) == "symlink":
            raise _reject(
                member.info.name,
                f"symlink to {target!r} goes through the symbolic link {through!r}; links to links are not allowed",
            )


def _check_hardlink(member: _Member, kinds: dict[str, str]) -> None:
    target = "/".join(member.link_parts)
    for depth in range(1, len(member.link_parts)):
        prefix = "/".join(member.link_parts[:depth])
        if kinds.get(prefix) == "symlink":
            raise _reject(
                member.info.name, f"hard link to {member.info.linkname!r} goes through the symbolic link {prefix!r}"
            )
    if kinds.get(target) not in ("file", "hardlink"):
        raise _reject(
            member.info.name, f"hard link to {member.info.linkname!r}: the target is not a file of the build context"
        )


def _write(tar: tarfile.TarFile, writer: TreeWriter, member: _Member) -> None:
    info = member.info
    try:
        if member.kind == "dir":
            writer.mkdir(member.parts)
        elif member.kind == "file":
            mode = info.mode & 0o755 if info.mode & 0o100 else info.mode & 0o644
            source = tar.extractfile(info)
            if source is None:
                raise _reject(info.name, "it has no content")
            with source:
                written = writer.write_file(
                    member.parts, read_chunks(source, info.size), mode | 0o600, float(info.mtime)
                )
            if written != info.size:
                raise _reject(info.name, f"its content is {written} bytes, not the {info.size} it declares")
        elif member.kind == "hardlink":
            writer.hardlink(member.parts, member.link_parts)
        else:
            writer.symlink(member.parts, info.linkname)
    except Escape as exc:
        raise _reject(info.name, str(exc)) from None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise _reject(info.name, f"it can't be unpacked safely ({reason})") from None


def _escapes(relative: str) -> bool:
    normalized = posixpath.normpath(relative)
    return normalized == ".." or normalized.startswith("../")


# --- git ----------------------------------------------------------------------------------------


def clone_git(
    remote: str,
    dest: Path,
    branch: str | None,
    credentials: dict[str, Any] | None,
    log: Callable[[str], None],
    *,
    commit: str | None = None,
    timeout: float = GIT_TIMEOUT_S,
) -> GitCheckout:
    """Shallow-clone `remote` into `dest`; returns its `git describe` version and commit, removes `.git`.

    With `commit` (a full object name), that commit is checked out instead of the branch's head: a
    redeploy rebuilds exactly what the deployment it repeats was built from. It is fetched alone when
    the server allows it, else with the branch's whole history; one that is gone is a `BuildFailed`.

    Credentials reach git as an `Authorization` header scoped to the remote's host, set through
    `GIT_CONFIG_*` environment variables: never in the command line (which any local process can read),
    never in `.git/config` or a credential helper's file, so nothing of them is ever on disk.
    """
    if remote.startswith("-"):
        raise InvalidInput(f"git.remote {remote!r} is not a valid git remote")
    if branch:
        check_branch_name(branch)
    if commit is not None and not _COMMIT.fullmatch(commit):
        raise InvalidInput(f"git commit {commit!r} is not a full commit hash")
    url, auth_config = git_auth(remote, credentials)
    secrets = credential_strings(credentials)
    dest.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["git", "-c", "protocol.ext.allow=never", "clone", "--depth=1", "--single-branch"]
    if branch:
        cmd += ["--branch", branch]
    cmd += ["--", url, str(dest)]
    log(f"cloning {redact(remote, secrets)}" + (f" (branch {branch})" if branch else ""))
    try:
        result = subprocess.run(
            cmd, env=_git_env(auth_config), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise BuildFailed(f"git remote unreachable: cloning {redact(remote, secrets)} took over {timeout:g} s") from exc
    except FileNotFoundError as exc:
        raise BuildFailed("git is not installed on the build host") from exc
    stderr = redact(result.stderr.strip(), secrets)
    for line in stderr.splitlines():
        log(f"git: {line}")
    if result.returncode != 0:
        shutil.rmtree(dest / ".git", ignore_errors=True)
        if branch and "not found in upstream" in stderr:
            raise BuildFailed(f"git branch {branch!r} not found in {redact(remote, secrets)}: {stderr}")
        raise BuildFailed(f"git remote unreachable: {stderr or f'git clone exited with {result.returncode}'}")
    if commit is not None and _head(dest, timeout) != commit:
        _check_out(dest, commit, auth_config, secrets, remote, log, timeout)
    head = _head(dest, timeout)
    describe = subprocess.run(
        ["git", "-C", str(dest), "describe", "--long", "--tags", "--dirty", "--always"],
        env=_git_env([]),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    git_version = describe.stdout.strip() if describe.returncode == 0 else "unknown"
    shutil.rmtree(dest / ".git")
    log(f"git version: {git_version}")
    log(f"source: git commit {head}")
    return GitCheckout(git_version, head)


class GitCheckout(NamedTuple):
    version: str  # `git describe --long --tags --dirty --always`
    commit: str  # the full object name of the commit checked out


def _git(
    dest: Path, args: list[str], config: list[tuple[str, str]], timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-c", "protocol.ext.allow=never", "-C", str(dest), *args],
        env=_git_env(config),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _head(dest: Path, timeout: float) -> str:
    result = _git(dest, ["rev-parse", "--verify", "HEAD^{commit}"], [], timeout)
    if result.returncode != 0:
        raise BuildFailed(f"the git checkout has no commit: {result.stderr.strip()}")
    return result.stdout.strip()


def _check_out(
    dest: Path,
    commit: str,
    config: list[tuple[str, str]],
    secrets: list[str],
    remote: str,
    log: Callable[[str], None],
    timeout: float,
) -> None:
    """Check out `commit` in the shallow clone at `dest`: fetched alone if the server allows, else with
    the cloned branch's whole history."""
    log(f"checking out commit {commit}, the source this version was built from")
    fetched = _git(dest, ["fetch", "-q", "--depth=1", "origin", commit], config, timeout)
    if fetched.returncode != 0:
        log("the git server does not hand out single commits; fetching the branch's history")
        fetched = _git(dest, ["fetch", "-q", "--unshallow", "--tags", "origin"], config, timeout)
    checked_out = _git(dest, ["-c", "advice.detachedHead=false", "checkout", "-q", "--detach", commit], [], timeout)
    if checked_out.returncode != 0:
        shutil.rmtree(dest / ".git", ignore_errors=True)
        reason = redact((fetched.stderr or checked_out.stderr).strip(), secrets)
        raise BuildFailed(
            f"git commit {commit}, the source this version was built from, is no longer in "
            f"{redact(remote, secrets)}: {reason}"
        )


def check_branch_name(branch: str) -> None:
    """Reject what git would not accept as a branch name (and anything looking like an option)."""
    ok = not branch.startswith("-") and (
        subprocess.run(
            ["git", "check-ref-format", "--branch", branch],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
        ).returncode
        == 0
    )
    if not ok:
        raise InvalidInput(f"git.branch {branch!r} is not a valid branch name")


def git_auth(remote: str, credentials: dict[str, Any] | None) -> tuple[str, list[tuple[str, str]]]:
    """The URL to clone and the git config that authenticates it (http(s) remotes only).

    With credentials, the URL loses any userinfo and the config sends `Authorization: Basic ...` to
    that scheme, host and port only (so a redirect elsewhere never receives it).
    """
    header = _basic_auth(credentials)
    parts = urlsplit(remote)
    if header is None or parts.scheme not in ("http", "https"):
        return remote, []
    host = parts.netloc.rpartition("@")[2]
    url = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url, [(f"http.{parts.scheme}://{host}/.extraHeader", f"Authorization: Basic {header}")]


def _basic_auth(credentials: dict[str, Any] | None) -> str | None:
    username = str((credentials or {}).get("username") or "")
    password = str((credentials or {}).get("password") or "")
    if not username and not password:
        return None
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def credential_strings(credentials: dict[str, Any] | None) -> list[str]:
    """Every form in which a password could show up in git's output (or a header dump)."""
    password = str((credentials or {}).get("password") or "")
    if not password:
        return []
    header = _basic_auth(credentials)
    return [password, quote(password, safe=""), *([header] if header else [])]


_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"]+@")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Hide URL userinfo (tokens are often given as usernames) and known secret values."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}***@", text)


def _git_env(config: list[tuple[str, str]]) -> dict[str, str]:
    """Git's environment: no prompts, no credential helpers (which would store a password on disk)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_CONFIG_")}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    env["LC_ALL"] = "C"
    settings = [("credential.helper", ""), *config]
    env["GIT_CONFIG_COUNT"] = str(len(settings))
    for index, (key, value) in enumerate(settings):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


# --- both ---------------------------------------------------------------------------------------


def secret_env_paths(manifest: Any) -> list[str]:
    """The manifest's secret env files that could sit in the job's directory, as relative paths."""
    found = []
    for field_name in ("secret_build_env_file", "secret_runtime_env_file"):
        value = getattr(manifest, field_name, None)
        if isinstance(value, str) and value.strip():
            relative = value.strip().replace("\\", "/")
            if not relative.startswith(("/", "~")) and not _escapes(relative):
                found.append("/".join(parts_of(relative)))
    return [path for path in found if path]


class FetchedSource(NamedTuple):
    job_dir: Path
    git_version: str  # `git describe` of a checkout; "tar" for an upload
    source_version: str  # exactly what was built: a git commit, or `sha256:...` of the uploaded files


def tree_digest(directory: Path) -> str:
    """`sha256:<hex>` of a directory's files: names, contents, executable bits and link targets.

    Independent of archive details (member order, timestamps, owners, compression), so the same files
    uploaded twice have the same digest."""
    outer = hashlib.sha256()
    root = str(directory)
    entries: list[tuple[str, bytes]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        relative_dir = os.path.relpath(dirpath, root)
        for name in sorted([*filenames, *(d for d in dirnames if os.path.islink(os.path.join(dirpath, d)))]):
            path = os.path.join(dirpath, name)
            relative = posixpath.normpath(posixpath.join(relative_dir.replace(os.sep, "/"), name))
            if os.path.islink(path):
                entries.append((relative, b"link\0" + os.readlink(path).encode("utf-8", "surrogateescape")))
                continue
            content = hashlib.sha256()
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    content.update(chunk)
            kind = b"exec" if os.stat(path).st_mode & 0o100 else b"file"
            entries.append((relative, kind + b"\0" + content.digest()))
    for relative, described in sorted(entries):
        outer.update(relative.encode("utf-8", "surrogateescape") + b"\0" + described + b"\n")
    return f"sha256:{outer.hexdigest()}"


def fetch_source(
    manifest: Any,
    workspace: Path,
    build_context: str | None,
    git_credentials: dict[str, Any] | None,
    log: Callable[[str], None],
    *,
    commit: str | None = None,
) -> FetchedSource:
    """Put the job's source under `workspace`; returns the job's directory and what exactly it holds.

    No symlink of the source leads outside it (an uploaded context is refused member by member, a
    checkout as a whole), and the manifest's secret env files never reach it: they travel in the
    deploy request's secret fields, and are kept encrypted by the target. With `commit`, a git source
    is that commit rather than the branch's head (see `clone_git`).
    """
    git = getattr(manifest, "git", None)
    directory = str(getattr(git, "directory", None) or ".") if git is not None else "."
    secret_files = secret_env_paths(manifest)
    if build_context:
        job_dir = _job_dir(workspace, directory)
        log("extracting the uploaded build context")
        for name in extract_build_context(build_context, job_dir, leave_out=secret_files):
            log(f"left out {name}: it is a secret env file of the manifest (secrets travel in the deploy request)")
        digest = tree_digest(job_dir)
        log(f"source: uploaded build context {digest}")
        return FetchedSource(job_dir, "tar", digest)
    remote = getattr(git, "remote", None) if git is not None else None
    if not remote:
        raise InvalidInput("the manifest has no git.remote and no build context was uploaded: nothing to build from")
    checkout = clone_git(str(remote), workspace, getattr(git, "branch", None), git_credentials, log, commit=commit)
    job_dir = _job_dir(workspace, directory)
    if not job_dir.is_dir():
        raise BuildFailed(f"git.directory {directory!r} not found in the repository {redact(str(remote))}")
    try:
        check_links_beneath(workspace)
    except Escape as exc:
        raise BuildFailed(f"the git checkout has a {exc}; links must stay inside the repository") from None
    for name in secret_files:
        path = job_dir.joinpath(*parts_of(name))
        if path.is_symlink() or path.is_file():
            path.unlink()
            log(f"left out {name}: it is a secret env file of the manifest (secrets travel in the deploy request)")
    return FetchedSource(job_dir, checkout.version, checkout.commit)


def existing_job_dir(manifest: Any, workspace: Path) -> Path:
    """The job's directory in source that is already in `workspace` (a redeploy reusing it)."""
    git = getattr(manifest, "git", None)
    directory = str(getattr(git, "directory", None) or ".") if git is not None else "."
    job_dir = _job_dir(workspace, directory)
    if not job_dir.is_dir():
        raise BuildFailed(f"git.directory {directory!r} not found in the job's source {workspace}")
    try:  # it may have been fetched by a version of Trackside that checked less
        check_links_beneath(workspace)
    except Escape as exc:
        raise BuildFailed(f"the job's source has a {exc}; links must stay inside the source") from None
    return job_dir


def _job_dir(workspace: Path, directory: str) -> Path:
    if directory.startswith(("/", "\\")) or _escapes(directory.replace("\\", "/")):
        raise InvalidInput(f"git.directory {directory!r} must be a relative path inside the repository")
    if not workspace.exists():  # a fresh source directory: nothing in it can be a link yet
        return Path(os.path.realpath(workspace)).joinpath(*parts_of(directory.replace("\\", "/")))
    try:
        return resolve_beneath(workspace, directory.replace("\\", "/"))
    except Escape:
        raise InvalidInput(f"git.directory {directory!r} points outside the repository") from None
