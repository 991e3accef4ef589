"""Reading and writing user-controlled trees: links are followed only where they stay inside."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.support.archives import overflow_escape

from trackside.build.confined import Escape, TreeWriter, check_links_beneath, resolve_beneath, staged_directory


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "real.txt").write_text("inside")
    (tmp_path / "outside.txt").write_text("outside")
    return root


def test_resolve_beneath_follows_links_that_stay_inside(tree: Path) -> None:
    (tree / "alias").symlink_to("pkg")
    (tree / "pkg" / "up").symlink_to("..")
    assert resolve_beneath(tree, "alias/up/alias/real.txt") == (tree / "pkg" / "real.txt").resolve()
    assert resolve_beneath(tree, "missing/../pkg/./real.txt") == (tree / "pkg" / "real.txt").resolve()


@pytest.mark.parametrize(
    ("link", "target", "message"),
    [
        ("out", "../outside.txt", "leads outside"),
        ("abs", "/etc/passwd", "to the absolute path '/etc/passwd'"),
        ("loop", "loop", "more than 40 symbolic links"),
    ],
)
def test_resolve_beneath_refuses_links_leaving_the_tree(tree: Path, link: str, target: str, message: str) -> None:
    (tree / link).symlink_to(target)
    with pytest.raises(Escape, match=message):
        resolve_beneath(tree, link)
    with pytest.raises(Escape, match="leads outside"):
        resolve_beneath(tree, "pkg/../..")


def test_resolve_beneath_is_not_fooled_by_a_path_over_path_max(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    with TreeWriter(root) as writer:
        for entry in overflow_escape(root, outside):
            parts = entry.name.split("/")
            if entry.kind == "dir":
                writer.mkdir(parts)
            else:  # the long link is named through the short links: create it at its real place
                real = resolve_beneath(root, "/".join(parts[:-1])).relative_to(root.resolve())
                writer.symlink([*real.parts, parts[-1]], entry.link)
    # What os.path.realpath (non-strict) says, and what the kernel does:
    assert os.path.realpath(root / "escape" / "secret.txt").startswith(str(root.resolve()))
    assert (root / "escape" / "secret.txt").read_text() == "secret"
    with pytest.raises(Escape, match="can't be resolved safely|leads outside"):
        resolve_beneath(root, "escape/secret.txt")
    with pytest.raises(Escape, match="symbolic link 'escape'"):
        check_links_beneath(root)


def test_tree_writer_never_writes_through_a_link_nor_over_a_file(tree: Path, tmp_path: Path) -> None:
    (tree / "planted").symlink_to(tmp_path)
    (tree / "file-link").symlink_to(tmp_path / "outside.txt")
    with TreeWriter(tree) as writer:
        with pytest.raises(OSError):
            writer.write_file(["planted", "pwned"], [b"x"])
        with pytest.raises(OSError):
            writer.write_file(["file-link"], [b"overwritten"])
        with pytest.raises(FileExistsError):
            writer.write_file(["pkg", "real.txt"], [b"overwritten"])
        with pytest.raises(Escape, match="not a regular file"):
            writer.hardlink(["stolen"], ["file-link"])
    assert (tmp_path / "outside.txt").read_text() == "outside"
    assert not (tmp_path / "pwned").exists()
    assert (tree / "pkg" / "real.txt").read_text() == "inside"


def test_staged_directory_leaves_nothing_when_the_block_fails(tmp_path: Path) -> None:
    dest = tmp_path / "a" / "b" / "dest"
    with pytest.raises(RuntimeError), staged_directory(dest) as staging:
        (staging / "half.txt").write_text("x")
        raise RuntimeError("refused")
    assert list(tmp_path.iterdir()) == []
    with staged_directory(dest) as staging:
        (staging / "whole.txt").write_text("x")
    assert [p.name for p in dest.iterdir()] == ["whole.txt"]
    assert [p.name for p in dest.parent.iterdir()] == ["dest"]
