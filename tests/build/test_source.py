"""Fetching a job's source: uploaded tar.gz contexts (hostile ones included) and shallow git clones."""

from __future__ import annotations

import base64
import gzip
import socket
import tarfile
from pathlib import Path
from typing import Any

import pytest

from trackside.build.source import clone_git, extract_build_context, fetch_source, redact
from trackside.errors import BuildFailed, InvalidInput

# --- build context ------------------------------------------------------------------------------


def test_build_context_extracts_files_and_nested_directories(tmp_path: Path, targz_b64: Any) -> None:
    context = targz_b64({"adder.py": "x = 1\n", "pkg/sub/data.txt": b"\x00\x01"})
    extract_build_context(context, tmp_path / "out")
    assert (tmp_path / "out" / "adder.py").read_text() == "x = 1\n"
    assert (tmp_path / "out" / "pkg" / "sub" / "data.txt").read_bytes() == b"\x00\x01"


def test_build_context_allows_symlinks_that_stay_inside(tmp_path: Path, targz_b64_members: Any) -> None:
    target = tarfile.TarInfo("real.txt")
    link = tarfile.TarInfo("sub/link.txt")
    link.type, link.linkname = tarfile.SYMTYPE, "../real.txt"
    extract_build_context(targz_b64_members(target, link), tmp_path / "out")
    assert (tmp_path / "out" / "sub" / "link.txt").is_symlink()


@pytest.mark.parametrize("name", ["../evil.py", "a/../../evil.py", ".."])
def test_build_context_rejects_parent_directory_escapes(tmp_path: Path, targz_b64: Any, name: str) -> None:
    with pytest.raises(InvalidInput, match=r"member .* escapes the build context"):
        extract_build_context(targz_b64({name: "x"}), tmp_path / "out")
    assert not (tmp_path / "evil.py").exists()


def test_build_context_rejects_absolute_paths(tmp_path: Path, targz_b64: Any) -> None:
    with pytest.raises(InvalidInput, match=r"'/tmp/evil.py' is not allowed: absolute path"):
        extract_build_context(targz_b64({"/tmp/evil.py": "x"}), tmp_path / "out")


@pytest.mark.parametrize("linkname", ["../../etc/passwd", "/etc/passwd", "a/../.."])
def test_build_context_rejects_symlinks_pointing_outside(tmp_path: Path, targz_b64_members: Any, linkname: str) -> None:
    link = tarfile.TarInfo("link")
    link.type, link.linkname = tarfile.SYMTYPE, linkname
    with pytest.raises(InvalidInput, match=r"member 'link' is not allowed: symlink .* points outside"):
        extract_build_context(targz_b64_members(link), tmp_path / "out")


def test_build_context_rejects_hard_links_pointing_outside(tmp_path: Path, targz_b64_members: Any) -> None:
    link = tarfile.TarInfo("hard")
    link.type, link.linkname = tarfile.LNKTYPE, "../outside"
    with pytest.raises(InvalidInput, match=r"member 'hard' is not allowed: hard link"):
        extract_build_context(targz_b64_members(link), tmp_path / "out")


@pytest.mark.parametrize("kind", [tarfile.FIFOTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE])
def test_build_context_rejects_devices_and_fifos(tmp_path: Path, targz_b64_members: Any, kind: bytes) -> None:
    member = tarfile.TarInfo("dev")
    member.type = kind
    with pytest.raises(InvalidInput, match=r"member 'dev' is not allowed: device"):
        extract_build_context(targz_b64_members(member), tmp_path / "out")


def test_build_context_that_is_not_base64_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"^build context is not a base64-encoded tar.gz: invalid base64"):
        extract_build_context("this is *not* base64!", tmp_path / "out")


def test_build_context_that_is_not_gzip_is_invalid_input(tmp_path: Path) -> None:
    plain = base64.b64encode(b"just some text, not compressed").decode()
    with pytest.raises(InvalidInput, match=r"^build context is not a base64-encoded tar.gz: .*not gzip"):
        extract_build_context(plain, tmp_path / "out")


def test_build_context_that_is_gzip_but_not_tar_is_invalid_input(tmp_path: Path) -> None:
    not_tar = base64.b64encode(gzip.compress(b"hello, not a tar archive" * 30)).decode()
    with pytest.raises(InvalidInput, match=r"^build context is not a base64-encoded tar.gz"):
        extract_build_context(not_tar, tmp_path / "out")


def test_build_context_over_the_size_cap_is_refused(tmp_path: Path, targz_b64: Any) -> None:
    context = targz_b64({"a.bin": b"a" * 600, "b.bin": b"b" * 600})
    with pytest.raises(InvalidInput, match=r"larger than"):
        extract_build_context(context, tmp_path / "out", max_bytes=1000)
    assert not (tmp_path / "out" / "a.bin").exists()  # nothing is written before the whole archive is checked


def test_build_context_with_too_many_members_is_refused(tmp_path: Path, targz_b64: Any) -> None:
    context = targz_b64({f"f{i}.txt": "x" for i in range(5)})
    with pytest.raises(InvalidInput, match=r"more than 4 members"):
        extract_build_context(context, tmp_path / "out", max_members=4)


# --- git ----------------------------------------------------------------------------------------


def test_clone_default_branch_returns_describe_version_and_removes_dot_git(
    tmp_path: Path, bare_repo: Path, log: Any
) -> None:
    version = clone_git(str(bare_repo), tmp_path / "src", None, None, log)
    assert version.startswith("v1.0.0-0-g")
    assert (tmp_path / "src" / "jobs" / "adder" / "adder.py").is_file()
    assert not (tmp_path / "src" / "FEATURE.txt").exists()
    assert not (tmp_path / "src" / ".git").exists()
    assert f"git version: {version}" in log


def test_clone_named_branch_over_a_file_url(tmp_path: Path, bare_repo: Path, log: Any) -> None:
    version = clone_git(bare_repo.as_uri(), tmp_path / "src", "feature", None, log)
    assert (tmp_path / "src" / "FEATURE.txt").read_text() == "feature\n"
    assert version and not version.startswith("v1.0.0-0-")


def test_clone_rejects_an_invalid_branch_name_before_running_git(tmp_path: Path, bare_repo: Path) -> None:
    for bad in ("a..b", "-upload-pack=evil", "x y"):
        with pytest.raises(InvalidInput, match=r"git.branch .* is not a valid branch name"):
            clone_git(str(bare_repo), tmp_path / "src", bad, None, lambda line: None)


def test_clone_of_a_missing_branch_names_it(tmp_path: Path, bare_repo: Path) -> None:
    with pytest.raises(BuildFailed, match=r"git branch 'nope' not found"):
        clone_git(str(bare_repo), tmp_path / "src", "nope", None, lambda line: None)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_remote_is_build_failed_without_any_credential(tmp_path: Path, log: Any) -> None:
    remote = f"http://t0ken-in-url@127.0.0.1:{_closed_port()}/repo.git"
    credentials = {"username": "bob", "password": "p@ss/w0rd"}
    with pytest.raises(BuildFailed, match=r"^git remote unreachable: ") as caught:
        clone_git(remote, tmp_path / "src", "main", credentials, log)
    shown = caught.value.message + "\n" + log.text()
    for secret in ("p@ss/w0rd", "p%40ss%2Fw0rd", "t0ken-in-url"):
        assert secret not in shown
    assert "127.0.0.1" in shown


def test_redact_hides_url_userinfo_and_secret_values() -> None:
    text = "fatal: https://bob:p%40ss@example.com/r.git said p@ss"
    assert redact(text, ["p@ss", "p%40ss"]) == "fatal: https://***@example.com/r.git said ***"


# --- fetch_source -------------------------------------------------------------------------------


def test_fetch_source_from_git_applies_the_directory(
    tmp_path: Path, bare_repo: Path, make_manifest: Any, log: Any
) -> None:
    manifest = make_manifest(git={"remote": str(bare_repo), "directory": "jobs/adder"})
    job_dir, version = fetch_source(manifest, tmp_path / "src", None, None, log)
    assert job_dir == (tmp_path / "src" / "jobs" / "adder").resolve()
    assert (job_dir / "adder.py").is_file()
    assert version.startswith("v1.0.0")


def test_fetch_source_names_a_directory_missing_from_the_repository(
    tmp_path: Path, bare_repo: Path, make_manifest: Any
) -> None:
    manifest = make_manifest(git={"remote": str(bare_repo), "directory": "jobs/missing"})
    with pytest.raises(BuildFailed, match=r"git.directory 'jobs/missing' not found"):
        fetch_source(manifest, tmp_path / "src", None, None, lambda line: None)


def test_fetch_source_refuses_a_directory_symlinked_out_of_the_repository(
    tmp_path: Path, make_manifest: Any, git: Any
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "out").symlink_to("/tmp")
    git("init", "-q", str(work))
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "link", cwd=work)
    manifest = make_manifest(git={"remote": str(work), "directory": "out"})
    with pytest.raises(InvalidInput, match=r"git.directory 'out' points outside"):
        fetch_source(manifest, tmp_path / "src", None, None, lambda line: None)


def test_fetch_source_puts_an_uploaded_context_at_the_directory(
    tmp_path: Path, make_manifest: Any, targz_b64: Any, log: Any
) -> None:
    manifest = make_manifest(git={"remote": "https://example.com/never-cloned.git", "directory": "jobs/adder"})
    job_dir, version = fetch_source(manifest, tmp_path / "src", targz_b64({"adder.py": "x"}), None, log)
    assert version == "tar"
    assert job_dir == (tmp_path / "src" / "jobs" / "adder").resolve()
    assert (job_dir / "adder.py").read_text() == "x"


def test_fetch_source_without_git_or_build_context_is_invalid_input(tmp_path: Path, make_manifest: Any) -> None:
    with pytest.raises(InvalidInput, match=r"no git.remote and no build context"):
        fetch_source(make_manifest(), tmp_path / "src", None, None, lambda line: None)
