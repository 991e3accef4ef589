"""The uploaded build context: what goes into the tarball, what stays home, and no symlink escapes."""

from __future__ import annotations

import base64
import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from trackside.cli.build_context import IgnoreRules, pack_directory, parse_ignore_line
from trackside.errors import InvalidInput


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {member.name: member for member in tar.getmembers()}


def files_of(data: bytes) -> set[str]:
    return {name for name, info in members(data).items() if info.isfile()}


def touch(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def job(tmp_path: Path) -> Path:
    root = tmp_path / "job"
    touch(root / "job.yaml", "name: adder\n")
    touch(root / "adder.py", "class Adder: ...\n")
    touch(root / "pkg" / "helpers.py")
    return root


def test_job_files_are_packed_with_relative_paths(job: Path) -> None:
    context = pack_directory(job)

    assert files_of(context.data) == {"job.yaml", "adder.py", "pkg/helpers.py"}
    assert "pkg" in members(context.data)


def test_file_content_survives_the_round_trip(job: Path) -> None:
    context = pack_directory(job)

    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(context.to_base64())), mode="r:gz") as tar:
        extracted = tar.extractfile("adder.py")
        assert extracted is not None
        assert extracted.read() == b"class Adder: ...\n"


def test_vcs_caches_and_virtualenvs_are_excluded_by_default(job: Path) -> None:
    touch(job / ".git" / "HEAD")
    touch(job / "__pycache__" / "adder.cpython-311.pyc")
    touch(job / "pkg" / "__pycache__" / "helpers.cpython-311.pyc")
    touch(job / ".venv" / "bin" / "python")
    touch(job / "stray.pyc")

    names = set(members(pack_directory(job).data))

    assert not {n for n in names if n.startswith((".git", ".venv")) or "__pycache__" in n or n.endswith(".pyc")}


def test_gitignore_patterns_exclude_files_and_directories(job: Path) -> None:
    touch(job / ".gitignore", "# comment\n*.log\ndata/\n/build\nsecret.env\n!keep.log\n")
    touch(job / "debug.log")
    touch(job / "pkg" / "deep.log")
    touch(job / "keep.log")
    touch(job / "data" / "big.csv")
    touch(job / "pkg" / "data" / "nested.csv")
    touch(job / "build" / "out.bin")
    touch(job / "pkg" / "build")  # a file named build below the root is not anchored by /build
    touch(job / "secret.env")

    names = files_of(pack_directory(job).data)

    assert names == {".gitignore", "job.yaml", "adder.py", "pkg/helpers.py", "keep.log", "pkg/build"}


def test_racetrackignore_is_honoured_and_anchored_paths_match_from_the_root(job: Path) -> None:
    touch(job / ".racetrackignore", "pkg/helpers.py\ndocs/*.md\n")
    touch(job / "docs" / "index.md")
    touch(job / "docs" / "logo.svg")

    names = files_of(pack_directory(job).data)

    assert "pkg/helpers.py" not in names
    assert "docs/index.md" not in names
    assert "docs/logo.svg" in names


def test_symlink_inside_the_directory_is_kept_as_a_relative_link(job: Path) -> None:
    (job / "pkg" / "alias.py").symlink_to(job / "adder.py")  # absolute target, inside the job

    context = pack_directory(job)

    link = members(context.data)["pkg/alias.py"]
    assert link.issym()
    assert link.linkname == "../adder.py"
    assert context.skipped_links == []


def test_symlink_pointing_outside_is_skipped_and_reported(job: Path, tmp_path: Path) -> None:
    outside = touch(tmp_path / "outside" / "passwords.txt", "hunter2")
    (job / "leak.txt").symlink_to(outside)
    (job / "leakdir").symlink_to(outside.parent, target_is_directory=True)
    (job / "sneaky.txt").symlink_to(Path("..") / "outside" / "passwords.txt")

    context = pack_directory(job)

    names = set(members(context.data))
    assert not {"leak.txt", "leakdir", "sneaky.txt"} & names
    assert not any("passwords" in name for name in names)
    assert sorted(context.skipped_links) == ["leak.txt", "leakdir", "sneaky.txt"]
    assert b"hunter2" not in gzip.decompress(context.data)


def test_dangling_symlink_is_skipped(job: Path) -> None:
    (job / "gone.py").symlink_to(job / "missing.py")

    context = pack_directory(job)

    assert "gone.py" not in members(context.data)
    assert context.skipped_links == ["gone.py"]


def test_same_content_gives_the_same_bytes(job: Path) -> None:
    assert pack_directory(job).data == pack_directory(job).data


def test_archive_carries_no_owner_names(job: Path) -> None:
    for info in members(pack_directory(job).data).values():
        assert (info.uid, info.gid, info.uname, info.gname) == (0, 0, "", "")


def test_executable_bit_is_preserved(job: Path) -> None:
    script = touch(job / "run.sh", "#!/bin/sh\n")
    os.chmod(script, 0o755)

    assert members(pack_directory(job).data)["run.sh"].mode & 0o111


def test_packing_a_missing_directory_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not a directory"):
        pack_directory(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("line", "path", "is_dir", "ignored"),
    [
        ("*.log", "a/b/c.log", False, True),
        ("data/", "data", True, True),
        ("data/", "data", False, False),
        ("/build", "build", True, True),
        ("/build", "src/build", True, False),
        ("**/tmp", "a/tmp", True, True),
        ("docs/*.md", "docs/a.md", False, True),
        ("docs/*.md", "x/docs/a.md", False, False),
    ],
)
def test_ignore_rule_semantics(line: str, path: str, is_dir: bool, ignored: bool) -> None:
    rule = parse_ignore_line(line)
    assert rule is not None
    assert IgnoreRules([rule]).ignored(path, is_dir) is ignored


def test_blank_and_comment_lines_are_not_rules() -> None:
    assert parse_ignore_line("") is None
    assert parse_ignore_line("   ") is None
    assert parse_ignore_line("# nothing") is None


def test_files_named_in_exclude_are_never_packed_whatever_the_ignore_rules(job: Path) -> None:
    touch(job / "runtime.env", "API_KEY=s3cret\n")
    touch(job / "conf" / "build.env", "PIP_TOKEN=t\n")
    touch(job / ".gitignore", "!runtime.env\n")

    context = pack_directory(job, exclude=[job / "runtime.env", job / "conf" / "build.env"])

    assert files_of(context.data) == {"job.yaml", "adder.py", "pkg/helpers.py", ".gitignore"}
    assert b"s3cret" not in gzip.decompress(context.data)
