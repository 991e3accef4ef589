"""The python3 job type's build-time checks of the entrypoint, run before any virtualenv is made."""

from __future__ import annotations

from pathlib import Path

import pytest

from trackside.build.jobtypes.python3.entrypoint import check_entrypoint
from trackside.errors import BuildFailed


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_single_module_level_class_is_the_job(tmp_path: Path) -> None:
    write(tmp_path, "job.py", "import os\nclass Job:\n    class Inner: pass\n    def perform(self): ...\n")
    assert check_entrypoint(tmp_path, "job.py", None) == "Job"


def test_a_missing_entrypoint_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(BuildFailed, match=r"entrypoint file 'x.py' not found in the job's source"):
        check_entrypoint(tmp_path, "x.py", None)


def test_an_entrypoint_outside_the_source_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "outside.py", "class A: pass\n")
    (tmp_path / "job").mkdir()
    with pytest.raises(BuildFailed, match=r"entrypoint_path '../outside.py' must be a path inside"):
        check_entrypoint(tmp_path / "job", "../outside.py", None)


def test_a_named_class_that_is_missing_lists_the_classes_found(tmp_path: Path) -> None:
    write(tmp_path, "job.py", "class A: pass\nclass B: pass\n")
    with pytest.raises(BuildFailed, match=r"entrypoint class 'C' not found in 'job.py' \(classes defined: A, B\)"):
        check_entrypoint(tmp_path, "job.py", "C")


def test_several_classes_without_a_name_ask_for_entrypoint_class(tmp_path: Path) -> None:
    write(tmp_path, "job.py", "class A: pass\nif True:\n    class B: pass\n")
    with pytest.raises(BuildFailed, match=r"several classes \(A, B\): set jobtype_extra.entrypoint_class"):
        check_entrypoint(tmp_path, "job.py", None)


def test_a_file_without_classes_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "job.py", "def perform(): ...\n")
    with pytest.raises(BuildFailed, match=r"no class defined in entrypoint file 'job.py'"):
        check_entrypoint(tmp_path, "job.py", None)


def test_a_named_class_may_be_imported_from_another_module(tmp_path: Path) -> None:
    write(tmp_path, "job.py", "from impl.core import RealJob as Job\n")
    assert check_entrypoint(tmp_path, "job.py", "Job") == "Job"


def test_a_syntax_error_gives_the_line(tmp_path: Path) -> None:
    write(tmp_path, "pkg/job.py", "class A:\n    def perform(self)\n")
    with pytest.raises(BuildFailed, match=r"'pkg/job.py' has a syntax error at line 2"):
        check_entrypoint(tmp_path, "pkg/job.py", None)
