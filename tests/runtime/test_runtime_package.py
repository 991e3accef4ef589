"""The runtime runs copied verbatim as `trackside_runtime` in a Python that lacks trackside and uvloop."""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

import pytest
from tests.runtime.harness import RUNTIME_PACKAGE, StartJob

OPTIONAL_SPEEDUPS = {"uvloop"}


def test_runtime_imports_only_stdlib_and_relative_modules() -> None:
    offenders = []
    for path in sorted(RUNTIME_PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level > 0:
                    continue
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in OPTIONAL_SPEEDUPS:
                    offenders.append(f"{path.name}:{node.lineno} imports {name}")
    assert offenders == []


def bare_python() -> str:
    """A Python without trackside (and without uvloop), like a job's own virtualenv."""
    for candidate in ("/usr/bin/python3", "/bin/python3"):
        if Path(candidate).exists():
            return candidate
    pytest.skip("no system python3 without trackside installed")


def test_copied_package_serves_a_job_with_a_bare_python(start_job: StartJob, tmp_path: Path) -> None:
    runtime_dir = tmp_path / "artifact" / "runtime"
    shutil.copytree(RUNTIME_PACKAGE, runtime_dir / "trackside_runtime")
    job = start_job(
        "class Adder:\n    def perform(self, a, b):\n        return a + b\n",
        python=bare_python(),
        pythonpath=str(runtime_dir),
        module="trackside_runtime",
    )
    assert job.client.post("/pub/job/adder/1.2.3/api/v1/perform", json={"a": 2, "b": 3}).json() == 5
    assert job.client.get("/health").json()["status"] == "pass"
    assert "loop: asyncio" in job.stdout()
    assert "Swagger" not in job.stderr()
