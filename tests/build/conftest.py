"""Fixtures for the build tests: manifests, tar.gz build contexts and local git repositories."""

from __future__ import annotations

import base64
import io
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from trackside.manifest.load import parse_manifest
from trackside.manifest.model import Manifest

ADDER_SOURCE = """\
class Adder:
    def perform(self, a: int, b: int) -> int:
        return a + b
"""


def manifest_dict(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "adder",
        "owner_email": "owner@example.com",
        "jobtype": "python3:latest",
        "jobtype_extra": {"entrypoint_path": "adder.py"},
    }
    data.update(overrides)
    return data


@pytest.fixture
def make_manifest() -> Callable[..., Manifest]:
    def make(**overrides: Any) -> Manifest:
        return parse_manifest(manifest_dict(**overrides))

    return make


def targz_b64(files: dict[str, str | bytes]) -> str:
    """A base64 tar.gz holding `files` (path -> content)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return base64.b64encode(buffer.getvalue()).decode()


def targz_b64_members(*members: tarfile.TarInfo) -> str:
    """A base64 tar.gz of raw (possibly hostile) members, each with empty content."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for member in members:
            tar.addfile(member, io.BytesIO(b"\0" * member.size) if member.isfile() else None)
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(name="targz_b64")
def targz_b64_fixture() -> Callable[[dict[str, str | bytes]], str]:
    return targz_b64


@pytest.fixture(name="targz_b64_members")
def targz_b64_members_fixture() -> Callable[..., str]:
    return targz_b64_members


def git(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


@pytest.fixture(name="git")
def git_fixture() -> Callable[..., str]:
    return git


@pytest.fixture
def bare_repo(tmp_path: Path) -> Path:
    """A bare repository: `main` has jobs/adder/adder.py (tagged v1.0.0), `feature` adds FEATURE.txt."""
    work = tmp_path / "work"
    (work / "jobs" / "adder").mkdir(parents=True)
    (work / "jobs" / "adder" / "adder.py").write_text(ADDER_SOURCE)
    (work / "README.md").write_text("repo root\n")
    git("init", "-q", str(work))
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "first", cwd=work)
    git("tag", "v1.0.0", cwd=work)
    git("checkout", "-q", "-b", "feature", cwd=work)
    (work / "FEATURE.txt").write_text("feature\n")
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "feature", cwd=work)
    git("checkout", "-q", "main", cwd=work)
    bare = tmp_path / "repo.git"
    git("clone", "-q", "--bare", str(work), str(bare))
    return bare


class LogLines(list[str]):
    """A `log` callable that keeps the lines, for asserting on what a build said."""

    def __call__(self, line: str) -> None:
        self.append(line)

    def text(self) -> str:
        return "\n".join(self)


@pytest.fixture
def log() -> LogLines:
    return LogLines()
