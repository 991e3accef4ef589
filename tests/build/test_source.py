"""Fetching a job's source: uploaded tar.gz contexts (hostile ones included) and shallow git clones."""

from __future__ import annotations

import base64
import gzip
import io
import os
import re
import subprocess
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.build.conftest import targz_b64
from tests.support.archives import LONG_LINK, STEPS, Entry, overflow_escape, tar_gz_b64
from tests.support.archives import file as archive_file
from tests.support.archives import hardlink as archive_hardlink
from tests.support.archives import symlink as archive_symlink
from tests.support.ports import free_port

from trackside.build.builder import build_job
from trackside.build.buildlog import BuildLog
from trackside.build.jobtype import JobType
from trackside.build.jobtypes.python3 import Plugin
from trackside.build.source import clone_git, extract_build_context, fetch_source, redact
from trackside.build.spec import BuildSpec
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
    version, commit = clone_git(str(bare_repo), tmp_path / "src", None, None, log)
    assert version.startswith("v1.0.0-0-g")
    assert commit.startswith(version.rsplit("-g", 1)[1]) and len(commit) == 40
    assert f"source: git commit {commit}" in log
    assert (tmp_path / "src" / "jobs" / "adder" / "adder.py").is_file()
    assert not (tmp_path / "src" / "FEATURE.txt").exists()
    assert not (tmp_path / "src" / ".git").exists()
    assert f"git version: {version}" in log


def test_clone_named_branch_over_a_file_url(tmp_path: Path, bare_repo: Path, log: Any) -> None:
    version, _ = clone_git(bare_repo.as_uri(), tmp_path / "src", "feature", None, log)
    assert (tmp_path / "src" / "FEATURE.txt").read_text() == "feature\n"
    assert version and not version.startswith("v1.0.0-0-")


def test_clone_rejects_an_invalid_branch_name_before_running_git(tmp_path: Path, bare_repo: Path) -> None:
    for bad in ("a..b", "-upload-pack=evil", "x y"):
        with pytest.raises(InvalidInput, match=r"git.branch .* is not a valid branch name"):
            clone_git(str(bare_repo), tmp_path / "src", bad, None, lambda line: None)


def test_clone_of_a_missing_branch_names_it(tmp_path: Path, bare_repo: Path) -> None:
    with pytest.raises(BuildFailed, match=r"git branch 'nope' not found"):
        clone_git(str(bare_repo), tmp_path / "src", "nope", None, lambda line: None)


def test_clone_at_a_commit_builds_that_commit_not_the_branch_head(
    tmp_path: Path, bare_repo: Path, git: Any, log: Any
) -> None:
    first = git("rev-parse", "main", cwd=bare_repo)
    work = tmp_path / "later"
    git("clone", "-q", str(bare_repo), str(work))
    (work / "jobs" / "adder" / "adder.py").write_text("changed = True\n")
    git("commit", "-q", "-am", "later", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)

    _, head = clone_git(bare_repo.as_uri(), tmp_path / "head", "main", None, log)
    version, commit = clone_git(bare_repo.as_uri(), tmp_path / "pinned", "main", None, log, commit=first)

    assert head != first
    assert commit == first and first.startswith(version.rsplit("-g", 1)[-1])
    assert "class Adder" in (tmp_path / "pinned" / "jobs" / "adder" / "adder.py").read_text()
    assert not (tmp_path / "pinned" / ".git").exists()
    assert f"checking out commit {first}, the source this version was built from" in log


def test_clone_at_a_commit_the_remote_no_longer_has_fails_naming_it(tmp_path: Path, bare_repo: Path, log: Any) -> None:
    gone = "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(BuildFailed, match=rf"git commit {gone}, the source this version was built from, is no longer"):
        clone_git(str(bare_repo), tmp_path / "src", None, None, log, commit=gone)
    with pytest.raises(InvalidInput, match=r"not a full commit hash"):
        clone_git(str(bare_repo), tmp_path / "src2", None, None, log, commit="--upload-pack=evil")


def test_an_uploaded_context_digest_depends_on_the_files_not_on_the_archive(tmp_path: Path, make_manifest: Any) -> None:
    def archive(mtime: int, content: bytes, order: int) -> str:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name in ("adder.py", "lib/util.py")[::order]:
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(content), mtime, 0o644
                tar.addfile(info, io.BytesIO(content))
        return base64.b64encode(buffer.getvalue()).decode()

    manifest = make_manifest()
    contexts = [archive(1, b"x = 1\n", 1), archive(2, b"x = 1\n", -1), archive(1, b"x = 2\n", 1)]
    digests = [
        fetch_source(manifest, tmp_path / f"s{i}", context, None, lambda line: None).source_version
        for i, context in enumerate(contexts)
    ]
    assert digests[0] == digests[1], "the same files, archived at another time and in another order"
    assert digests[0] != digests[2], "another content"
    assert all(d.startswith("sha256:") and len(d) == 7 + 64 for d in digests)


def test_unreachable_remote_is_build_failed_without_any_credential(tmp_path: Path, log: Any) -> None:
    remote = f"http://t0ken-in-url@127.0.0.1:{free_port()}/repo.git"
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
    job_dir, version, _ = fetch_source(manifest, tmp_path / "src", None, None, log)
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
    job_dir, version, source = fetch_source(manifest, tmp_path / "src", targz_b64({"adder.py": "x"}), None, log)
    assert version == "tar"
    assert source.startswith("sha256:") and f"source: uploaded build context {source}" in log
    assert job_dir == (tmp_path / "src" / "jobs" / "adder").resolve()
    assert (job_dir / "adder.py").read_text() == "x"


def test_fetch_source_without_git_or_build_context_is_invalid_input(tmp_path: Path, make_manifest: Any) -> None:
    with pytest.raises(InvalidInput, match=r"no git.remote and no build context"):
        fetch_source(make_manifest(), tmp_path / "src", None, None, lambda line: None)


# --- hostile build contexts: the real attacks ---------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the destination holding a file an attacker wants (think of auth.key)."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret.txt").write_text("PLATFORM-SECRET-4517\n")
    return path


def assert_refused_and_nothing_written(dest: Path, outside: Path, context: str, member: str) -> None:
    with pytest.raises(InvalidInput, match=rf"^build context member '{re.escape(member)}' is not allowed: ") as caught:
        extract_build_context(context, dest)
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"], "nothing planted outside"
    assert (outside / "secret.txt").read_text() == "PLATFORM-SECRET-4517\n"
    assert (outside / "secret.txt").stat().st_nlink == 1, "no hard link to the secret was made"
    assert list(dest.parent.iterdir()) == [], "a refused archive leaves nothing half-made"
    assert member in caught.value.message


def test_path_max_symlink_overflow_cannot_plant_a_file_outside(tmp_path: Path, outside: Path) -> None:
    # CVE-2025-4517: on an unfixed Python, tarfile's "data" filter lets this through and `pwned` lands in outside/.
    dest = tmp_path / "work" / "src"
    dest.parent.mkdir()
    attack = overflow_escape(dest, outside) + [archive_file("escape/pwned", "planted by the build context")]
    long_member = f"{'/'.join(STEPS)}/{LONG_LINK}"
    assert_refused_and_nothing_written(dest, outside, tar_gz_b64(attack), long_member)


def test_path_max_symlink_overflow_cannot_hard_link_a_file_from_outside(tmp_path: Path, outside: Path) -> None:
    dest = tmp_path / "work" / "src"
    dest.parent.mkdir()
    attack = [*overflow_escape(dest, outside), archive_hardlink("stolen", "escape/secret.txt")]
    assert_refused_and_nothing_written(dest, outside, tar_gz_b64(attack), f"{'/'.join(STEPS)}/{LONG_LINK}")


def test_path_max_symlink_overflow_cannot_leave_a_link_to_a_file_outside(tmp_path: Path, outside: Path) -> None:
    # No write at all: a link that the build (compileall, uv, the image) would later read through.
    dest = tmp_path / "work" / "src"
    dest.parent.mkdir()
    attack = [*overflow_escape(dest, outside), archive_symlink("leak.py", "escape/secret.txt")]
    assert_refused_and_nothing_written(dest, outside, tar_gz_b64(attack), f"{'/'.join(STEPS)}/{LONG_LINK}")


def test_link_chains_and_hard_links_through_links_are_refused_even_inside(tmp_path: Path) -> None:
    chain = [
        archive_file("pkg/real.py", "x"),
        archive_symlink("alias", "pkg"),
        archive_symlink("leak", "alias/real.py"),
    ]
    with pytest.raises(InvalidInput, match=r"'leak' is not allowed: symlink to 'alias/real.py' goes through the symb"):
        extract_build_context(tar_gz_b64(chain), tmp_path / "a")
    through = [
        archive_file("pkg/real.py", "x"),
        archive_symlink("alias", "pkg"),
        archive_hardlink("h", "alias/real.py"),
    ]
    with pytest.raises(InvalidInput, match=r"'h' is not allowed: hard link to 'alias/real.py' goes through the symb"):
        extract_build_context(tar_gz_b64(through), tmp_path / "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


CLASSIC_ATTACKS: dict[str, tuple[list[Entry], str]] = {
    "parent directory in the name": ([archive_file("../outside/pwned", "x")], "../outside/pwned"),
    "absolute name": ([archive_file("/tmp/trackside-pwned-by-test", "x")], "/tmp/trackside-pwned-by-test"),
    "symlink out, then a write through it": (
        [archive_symlink("link", "../outside"), archive_file("link/pwned", "x")],
        "link",
    ),
    "symlink inside, then a write through it": (
        [archive_symlink("here", "."), archive_file("here/pwned", "x")],
        "here/pwned",
    ),
    "symlink chain climbing out": (
        [archive_symlink("self", "."), archive_symlink("up", "self/.."), archive_file("up/outside/pwned", "x")],
        "up",
    ),
    "write through a link declared after it": (
        [archive_file("later/pwned", "x"), archive_symlink("later", "../outside")],
        "later",
    ),
    "hard link to a file outside": ([archive_hardlink("stolen", "../outside/secret.txt")], "stolen"),
    "hard link to an absolute path": ([archive_hardlink("stolen", "/etc/passwd")], "stolen"),
    "the same name twice": ([archive_file("twice.txt", "a"), archive_file("twice.txt", "b")], "twice.txt"),
}


@pytest.mark.parametrize("case", list(CLASSIC_ATTACKS))
def test_classic_archive_attacks_are_refused_naming_the_member(tmp_path: Path, outside: Path, case: str) -> None:
    entries, member = CLASSIC_ATTACKS[case]
    dest = tmp_path / "work" / "src"
    dest.parent.mkdir()
    assert_refused_and_nothing_written(dest, outside, tar_gz_b64(entries), member)
    assert not Path("/tmp/trackside-pwned-by-test").exists()


def test_a_refused_archive_fails_the_build_with_the_member_named(
    tmp_path: Path, outside: Path, make_manifest: Any
) -> None:
    workspace_root = tmp_path / "ws"
    attack = [*overflow_escape(workspace_root / "src", outside), archive_file("escape/pwned", "x")]
    log: list[str] = []
    job_type = JobType(name="never", version="1.0.0", local_builder=lambda request: pytest.fail("built anyway"))
    with pytest.raises(InvalidInput, match=r"^build context member 'a/b/c/.*' is not allowed: it would be written"):
        build_job(
            BuildSpec(
                make_manifest(),
                job_type,
                workspace_root,
                tmp_path / "cache",
                log.append,
                build_context=tar_gz_b64(attack),
            )
        )
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert not (workspace_root / "src").exists(), "no half-made src/ left in the build directory"
    assert list(tmp_path.iterdir()) == [outside]


def test_links_that_stay_inside_and_hard_links_to_earlier_files_are_kept(tmp_path: Path) -> None:
    entries = [
        archive_file("pkg/real.py", "X = 1\n"),
        archive_symlink("pkg/alias.py", "real.py"),
        archive_symlink("top", "pkg"),
        archive_hardlink("pkg/copy.py", "pkg/real.py"),
        archive_symlink("dangling", "not/there"),
    ]
    extract_build_context(tar_gz_b64(entries), tmp_path / "out")
    out = tmp_path / "out"
    assert (out / "pkg" / "alias.py").read_text() == "X = 1\n"
    assert (out / "top" / "real.py").read_text() == "X = 1\n"
    assert (out / "pkg" / "copy.py").stat().st_ino == (out / "pkg" / "real.py").stat().st_ino
    assert (out / "dangling").is_symlink()


# --- git checkouts: no link out of the repository -------------------------------------------------


def commit_all(git: Any, work: Path) -> None:
    git("init", "-q", str(work))
    git("add", "-A", ".", cwd=work)
    git("commit", "-q", "-m", "content", cwd=work)


@pytest.mark.parametrize("how", ["absolute", "relative"])
def test_a_git_checkout_with_a_symlink_out_of_the_repository_is_refused(
    tmp_path: Path, outside: Path, make_manifest: Any, git: Any, how: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "adder.py").write_text("class Adder:\n    pass\n")
    secret = outside / "secret.txt"
    (work / "requirements.txt").symlink_to(secret if how == "absolute" else Path("../../outside/secret.txt"))
    commit_all(git, work)
    manifest = make_manifest(git={"remote": str(work)})
    with pytest.raises(BuildFailed, match=r"symbolic link 'requirements.txt' -> .* points outside"):
        fetch_source(manifest, tmp_path / "ws" / "src", None, None, lambda line: None)


def commit_entries(work: Path, entries: list[Entry], git: Any) -> None:
    """Commit the tree with git's plumbing: its long paths need never exist in a work tree here."""
    git("init", "-q", str(work))
    for entry in entries:
        content, mode, path = entry.data, "100644", entry.name
        if entry.kind == "dir":
            path = f"{entry.name}/.keep"
        elif entry.kind == "symlink":
            content, mode = entry.link.encode(), "120000"
        blob = (
            subprocess.run(
                ["git", "hash-object", "-w", "--stdin"], cwd=work, input=content, capture_output=True, check=True
            )
            .stdout.decode()
            .strip()
        )
        git("update-index", "--add", "--cacheinfo", f"{mode},{blob},{path}", cwd=work)
    git("commit", "-q", "-m", "tree", cwd=work)


def test_a_git_checkout_using_the_path_max_overflow_is_refused(
    tmp_path: Path, outside: Path, make_manifest: Any, git: Any
) -> None:
    checkout = tmp_path / "ws" / "src"
    entries = [
        *overflow_escape(checkout, outside, component=238, through_links=False),
        archive_symlink("requirements.txt", "escape/secret.txt"),
        archive_file("adder.py", "class Adder:\n    pass\n"),
    ]
    commit_entries(tmp_path / "work", entries, git)
    manifest = make_manifest(git={"remote": str(tmp_path / "work")})
    with pytest.raises(BuildFailed, match=r"the git checkout has a symbolic link .* points outside"):
        fetch_source(manifest, checkout, None, None, lambda line: None)


def test_a_git_job_cannot_read_a_file_outside_through_a_symlinked_source_file(
    tmp_path: Path, outside: Path, make_manifest: Any, git: Any
) -> None:
    # compileall used to compile leak.py through the link and print the secret's line in its error.
    (outside / "secret.txt").write_text("PLATFORM-SECRET-4517 = = not python\n")
    work = tmp_path / "work"
    work.mkdir()
    (work / "adder.py").write_text("class Adder:\n    def perform(self):\n        return 1\n")
    (work / "leak.py").symlink_to(outside / "secret.txt")
    commit_all(git, work)
    log = BuildLog()
    job_type = Plugin().job_types()["python3:1.0.0"]
    manifest = make_manifest(git={"remote": str(work)})
    with pytest.raises(BuildFailed, match=r"symbolic link 'leak.py'"):
        build_job(BuildSpec(manifest, job_type, tmp_path / "ws", tmp_path / "cache", log))
    assert "PLATFORM-SECRET-4517" not in log.text()


def test_secret_env_files_of_the_manifest_never_reach_the_source_tree(
    tmp_path: Path, make_manifest: Any, git: Any
) -> None:
    files = {"adder.py": "x = 1\n", "runtime.env": "TOKEN=s3cr3t\n", "conf/build.env": "PIP_TOKEN=b\n"}
    manifest = make_manifest(secret_runtime_env_file="runtime.env", secret_build_env_file="./conf/build.env")
    log: list[str] = []
    job_dir, _, _ = fetch_source(manifest, tmp_path / "up" / "src", targz_b64(files), None, log.append)
    assert sorted(p.relative_to(job_dir).as_posix() for p in job_dir.rglob("*") if p.is_file()) == ["adder.py"]
    assert any("left out runtime.env" in line for line in log)

    work = tmp_path / "work"
    work.mkdir()
    for name, content in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(content)
    commit_all(git, work)
    manifest = make_manifest(
        git={"remote": str(work)}, secret_runtime_env_file="runtime.env", secret_build_env_file="conf/build.env"
    )
    job_dir, _, _ = fetch_source(manifest, tmp_path / "git" / "src", None, None, log.append)
    assert sorted(p.relative_to(job_dir).as_posix() for p in job_dir.rglob("*") if p.is_file()) == ["adder.py"]
    assert sum("left out" in line for line in log) == 4


# --- git credentials are never at rest in plaintext -----------------------------------------------


class GitHttpServer:
    """git's smart HTTP protocol (`git http-backend`) on loopback behind Basic auth.

    While it answers each request (the clone waits for it), it looks for the password where git
    could leave it: any process's command line, and every file under `watch` (the clone's directory).
    """

    def __init__(self, project_root: Path, username: str, password: str, watch: Path) -> None:
        self.seen_in: set[str] = set()
        self.authorized = 0
        expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.handle_git()

            def do_POST(self) -> None:  # noqa: N802
                self.handle_git()

            def handle_git(self) -> None:
                server.look_for(password, watch)
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                server.authorized += 1
                path, _, query = self.path.partition("?")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                env = {
                    "PATH": os.environ["PATH"],
                    "GIT_PROJECT_ROOT": str(project_root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "REQUEST_METHOD": self.command,
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                    "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                    "REMOTE_USER": username,
                    "REMOTE_ADDR": "127.0.0.1",
                }
                result = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=True)
                head, _, payload = result.stdout.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.decode().split("\r\n"):
                    name, _, value = line.partition(": ")
                    if name.lower() == "status":
                        status = int(value.split()[0])
                    else:
                        headers.append((name, value))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def look_for(self, password: str, watch: Path) -> None:
        needle = password.encode()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if needle in cmdline:
                self.seen_in.add(f"command line of process {pid}")
        for dirpath, _dirnames, filenames in os.walk(watch):
            for name in filenames:
                try:
                    if needle in (Path(dirpath) / name).read_bytes():
                        self.seen_in.add(str(Path(dirpath, name).relative_to(watch)))
                except OSError:
                    continue

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def test_git_credentials_reach_the_server_but_no_command_line_or_file(
    tmp_path: Path, bare_repo: Path, monkeypatch: pytest.MonkeyPatch, log: Any
) -> None:
    # A platform user's git config with a credential store: git would write the password there.
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[credential]\n\thelper = store\n")
    monkeypatch.setenv("HOME", str(home))
    password = "pw-7f3a9c51e2"
    dest = tmp_path / "ws" / "src"
    server = GitHttpServer(bare_repo.parent, "bob", password, watch=tmp_path / "ws")
    try:
        version, _ = clone_git(
            f"{server.url}/{bare_repo.name}", dest, None, {"username": "bob", "password": password}, log
        )
    finally:
        server.close()
    assert version.startswith("v1.0.0")
    assert (dest / "jobs" / "adder" / "adder.py").is_file()
    assert server.authorized > 0, "the credentials were used"
    assert server.seen_in == set(), "the password was readable on this machine while cloning"
    assert not (home / ".git-credentials").exists()
    assert password not in log.text()


def test_a_redeploy_reusing_source_with_a_link_out_is_refused(
    tmp_path: Path, outside: Path, make_manifest: Any
) -> None:
    source = tmp_path / "ws" / "src"
    source.mkdir(parents=True)
    (source / "adder.py").write_text("x = 1\n")
    (source / "leak.py").symlink_to(outside / "secret.txt")  # left by an older, laxer build
    job_type = JobType(name="never", version="1.0.0", local_builder=lambda request: pytest.fail("built anyway"))
    with pytest.raises(BuildFailed, match=r"the job's source has a symbolic link 'leak.py'"):
        build_job(BuildSpec(make_manifest(), job_type, tmp_path / "ws", tmp_path / "cache", print, source_ready=True))
