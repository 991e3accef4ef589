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
import io
import os
import posixpath
import re
import shutil
import subprocess
import tarfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from trackside.errors import BuildFailed, InvalidInput

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
) -> None:
    """Unpack a base64 tar.gz into `dest`, refusing anything that would land outside it."""
    try:
        raw = base64.b64decode("".join(b64_targz.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"{_BAD_CONTEXT}: invalid base64 ({exc})") from exc
    if raw[:2] != b"\x1f\x8b":
        raise InvalidInput(f"{_BAD_CONTEXT}: the decoded data is not gzip-compressed")
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
            members: list[tarfile.TarInfo] = []
            total = 0
            for member in tar:
                if len(members) >= max_members:
                    raise InvalidInput(f"build context has more than {max_members} members")
                _check_member(member)
                total += max(member.size, 0)
                if total > max_bytes:
                    raise InvalidInput(f"build context is larger than {max_bytes // (1024 * 1024)} MB when unpacked")
                members.append(member)
            # The "data" filter re-checks every member against the real filesystem at extraction time.
            tar.extractall(root, members=members, filter="data")
    except tarfile.FilterError as exc:
        name = exc.tarinfo.name if exc.tarinfo is not None else "?"
        raise InvalidInput(f"build context member {name!r} is not allowed: {exc}") from exc
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise InvalidInput(f"{_BAD_CONTEXT}: {exc}") from exc


def _check_member(member: tarfile.TarInfo) -> None:
    name = member.name

    def reject(why: str) -> InvalidInput:
        return InvalidInput(f"build context member {name!r} is not allowed: {why}")

    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise reject("absolute path")
    if _escapes(name):
        raise reject("path escapes the build context (..)")
    if member.isdev():
        raise reject("device files and fifos are not allowed")
    if member.issym():
        target = member.linkname
        if target.startswith("/") or _escapes(posixpath.join(posixpath.dirname(name), target)):
            raise reject(f"symlink to {target!r} points outside the build context")
    elif member.islnk():
        target = member.linkname
        if target.startswith("/") or _escapes(target):
            raise reject(f"hard link to {target!r} points outside the build context")
    elif not (member.isfile() or member.isdir()):
        raise reject("only regular files, directories and links are allowed")


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
    timeout: float = GIT_TIMEOUT_S,
) -> str:
    """Shallow-clone `remote` into `dest`; returns the `git describe` version and removes `.git`."""
    if remote.startswith("-"):
        raise InvalidInput(f"git.remote {remote!r} is not a valid git remote")
    if branch:
        check_branch_name(branch)
    url = url_with_credentials(remote, credentials)
    secrets = credential_strings(credentials)
    dest.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["git", "-c", "protocol.ext.allow=never", "clone", "--depth=1", "--single-branch"]
    if branch:
        cmd += ["--branch", branch]
    cmd += ["--", url, str(dest)]
    log(f"cloning {redact(remote, secrets)}" + (f" (branch {branch})" if branch else ""))
    try:
        result = subprocess.run(
            cmd, env=_git_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise BuildFailed(f"git remote unreachable: cloning {redact(remote, secrets)} took over {timeout:g} s") from exc
    except FileNotFoundError as exc:
        raise BuildFailed("git is not installed on the build host") from exc
    stderr = redact(result.stderr.strip(), secrets)
    for line in stderr.splitlines():
        log(f"git: {line}")
    if result.returncode != 0:
        if branch and "not found in upstream" in stderr:
            raise BuildFailed(f"git branch {branch!r} not found in {redact(remote, secrets)}: {stderr}")
        raise BuildFailed(f"git remote unreachable: {stderr or f'git clone exited with {result.returncode}'}")
    describe = subprocess.run(
        ["git", "-C", str(dest), "describe", "--long", "--tags", "--dirty", "--always"],
        env=_git_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    git_version = describe.stdout.strip() if describe.returncode == 0 else "unknown"
    shutil.rmtree(dest / ".git", ignore_errors=True)
    log(f"git version: {git_version}")
    return git_version


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


def url_with_credentials(remote: str, credentials: dict[str, Any] | None) -> str:
    """Embed username/password (url-quoted) in an http(s) remote; other remotes are left as they are."""
    if not credentials:
        return remote
    parts = urlsplit(remote)
    if parts.scheme not in ("http", "https"):
        return remote
    username = quote(str(credentials.get("username") or ""), safe="")
    password = quote(str(credentials.get("password") or ""), safe="")
    if not username and not password:
        return remote
    host = parts.netloc.rpartition("@")[2]
    userinfo = f"{username}:{password}" if password else username
    return urlunsplit((parts.scheme, f"{userinfo}@{host}", parts.path, parts.query, parts.fragment))


def credential_strings(credentials: dict[str, Any] | None) -> list[str]:
    """Every form in which a password could show up in git's output."""
    password = str((credentials or {}).get("password") or "")
    if not password:
        return []
    return [password, quote(password, safe="")]


_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"]+@")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Hide URL userinfo (tokens are often given as usernames) and known secret values."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}***@", text)


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    env["LC_ALL"] = "C"
    return env


# --- both ---------------------------------------------------------------------------------------


def fetch_source(
    manifest: Any,
    workspace: Path,
    build_context: str | None,
    git_credentials: dict[str, Any] | None,
    log: Callable[[str], None],
) -> tuple[Path, str]:
    """Put the job's source under `workspace`; returns (the job's directory, git_version)."""
    git = getattr(manifest, "git", None)
    directory = str(getattr(git, "directory", None) or ".") if git is not None else "."
    job_dir = _job_dir(workspace, directory)
    if build_context:
        log("extracting the uploaded build context")
        extract_build_context(build_context, job_dir)
        return job_dir, "tar"
    remote = getattr(git, "remote", None) if git is not None else None
    if not remote:
        raise InvalidInput("the manifest has no git.remote and no build context was uploaded: nothing to build from")
    git_version = clone_git(str(remote), workspace, getattr(git, "branch", None), git_credentials, log)
    if not job_dir.is_dir():
        raise BuildFailed(f"git.directory {directory!r} not found in the repository {redact(str(remote))}")
    job_dir = _job_dir(workspace, directory)  # again, now that a symlink in the repo could point out
    return job_dir, git_version


def existing_job_dir(manifest: Any, workspace: Path) -> Path:
    """The job's directory in source that is already in `workspace` (a redeploy reusing it)."""
    git = getattr(manifest, "git", None)
    directory = str(getattr(git, "directory", None) or ".") if git is not None else "."
    job_dir = _job_dir(workspace, directory)
    if not job_dir.is_dir():
        raise BuildFailed(f"git.directory {directory!r} not found in the job's source {workspace}")
    return job_dir


def _job_dir(workspace: Path, directory: str) -> Path:
    if directory.startswith(("/", "\\")) or _escapes(directory.replace("\\", "/")):
        raise InvalidInput(f"git.directory {directory!r} must be a relative path inside the repository")
    root = workspace.resolve()
    job_dir = (root / directory).resolve()
    if job_dir != root and root not in job_dir.parents:
        raise InvalidInput(f"git.directory {directory!r} points outside the repository")
    return job_dir
