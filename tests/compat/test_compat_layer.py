"""The racetrack-compat layer: the packages Racetrack's wrapper brings, in one shared site dir that
job venvs see through a .pth file, switched on as docs/racetrack-compat.md says."""

from __future__ import annotations

import base64
import io
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from trackside.build.artifacts import LocalArtifact
from trackside.build.builder import build_job
from trackside.build.jobtypes.python3 import Plugin, compat
from trackside.build.jobtypes.python3.options import PythonOptions
from trackside.build.spec import BuildSpec
from trackside.errors import BuildFailed, InvalidInput
from trackside.manifest.load import parse_manifest
from trackside.manifest.model import Manifest

FORM_JOB = """
from fastapi import FastAPI, Form


class Job:
    def perform(self) -> list:
        import multipart, pydantic, httpx, jinja2, yaml, prometheus_client, a2wsgi  # noqa: F401

        return sorted(m.__name__ for m in (multipart, pydantic, httpx, jinja2, yaml, prometheus_client, a2wsgi))

    def webview_app(self, base_url):
        app = FastAPI()

        @app.post("/form")
        async def form(name: str = Form("")):  # needs python-multipart, which no requirements name
            return {"hello": name}

        return app
"""
PLAIN_JOB = "class Job:\n    def perform(self) -> int:\n        return 1\n"


def manifest(jobtype: str = "python3:latest", **extra: Any) -> Manifest:
    return parse_manifest(
        {
            "name": "compat-job",
            "owner_email": "owner@example.com",
            "jobtype": jobtype,
            "jobtype_extra": {"entrypoint_path": "job.py", **extra},
        }
    )


def targz(files: dict[str, str]) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return base64.b64encode(buffer.getvalue()).decode()


def write(root: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


# --- when the layer is on -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jobtype", "extra", "files", "on", "why"),
    [
        ("python3:latest", {}, {"job.py": FORM_JOB}, True, "on (the job imports a2wsgi, fastapi, httpx"),
        ("python3:latest", {}, {"job.py": PLAIN_JOB}, False, "off (set jobtype_extra.racetrack_compat: true"),
        ("python3:2.4.0", {}, {"job.py": PLAIN_JOB}, True, "on (jobtype names Racetrack's python3:2.4.0)"),
        ("python3:2.*", {}, {"job.py": PLAIN_JOB}, True, "on (jobtype names Racetrack's python3:2.*)"),
        ("python3:1.0.0", {}, {"job.py": PLAIN_JOB}, False, "off"),
        ("python3:latest", {"racetrack_compat": True}, {"job.py": PLAIN_JOB}, True, "on (jobtype_extra"),
        ("python3:2.4.0", {"racetrack_compat": False}, {"job.py": FORM_JOB}, False, "off (jobtype_extra"),
        (
            "python3:latest",
            {},
            {"job.py": PLAIN_JOB, "lib/util.py": "def f():\n    import yaml.constructor\n"},
            True,
            "on (the job imports yaml)",
        ),
        ("python3:latest", {}, {"job.py": PLAIN_JOB + "# uses fastapi one day\n"}, False, "off"),
        ("python3:latest", {}, {"job.py": PLAIN_JOB, ".venv/lib/x.py": "import fastapi\n"}, False, "off"),
    ],
)
def test_the_layer_is_on_when_asked_for_racetrack_versions_or_imports(
    tmp_path: Path, jobtype: str, extra: dict[str, Any], files: dict[str, str], on: bool, why: str
) -> None:
    job = manifest(jobtype, **extra)
    wanted, asked, reason = compat.wanted(job, PythonOptions.from_manifest(job), write(tmp_path, files))
    assert wanted is on
    assert asked is (extra.get("racetrack_compat") is True)
    assert reason.startswith(why), reason


def test_the_manifest_field_is_a_boolean() -> None:
    assert manifest(racetrack_compat=True).python_extra.racetrack_compat is True
    assert manifest().python_extra.racetrack_compat is None
    with pytest.raises(InvalidInput, match="jobtype_extra.racetrack_compat"):
        manifest(racetrack_compat="sometimes")


# --- the local build --------------------------------------------------------------------------------


def build(tmp_path: Path, cache: Path, files: dict[str, str], lines: list[str], **extra: Any) -> LocalArtifact:
    job_type = Plugin().job_types()["python3:1.0.0"]
    workspace = tmp_path / f"build{len(list(tmp_path.glob('build*')))}"
    artifact = build_job(
        BuildSpec(manifest(**extra), job_type, workspace, cache, lines.append, build_context=targz(files))
    )
    assert isinstance(artifact, LocalArtifact)
    return artifact


def run_in_job(artifact: LocalArtifact, code: str) -> str:
    env = {"PATH": "/usr/bin:/bin", **artifact.env}
    result = subprocess.run(
        [artifact.command[0], "-c", code], cwd=artifact.cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.slow
def test_a_job_importing_the_wrappers_packages_gets_them_without_listing_them(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    lines: list[str] = []
    artifact = build(tmp_path, cache, {"job.py": FORM_JOB}, lines)
    log = "\n".join(lines)
    assert "racetrack-compat packages: on (the job imports a2wsgi, fastapi, httpx" in log
    assert "racetrack-compat layer installed in" in log
    venv = Path(artifact.command[0]).parent.parent
    pth = next(venv.glob("lib/python*/site-packages/racetrack_compat.pth"))
    site = Path(pth.read_text().strip())
    assert site.parent.parent == cache / "racetrack-compat" and (site / "fastapi").is_dir()
    # The venv itself holds none of them: they come from the shared layer, after its own site-packages.
    assert not list(venv.glob("lib/python*/site-packages/fastapi"))
    where = run_in_job(
        artifact,
        "import sys, site, fastapi, python_multipart\n"
        "own = site.getsitepackages()[0]\n"
        "print(fastapi.__file__, sys.path.index(own) < sys.path.index(str(fastapi.__file__).rsplit('/fastapi/')[0]))",
    )
    assert where.startswith(str(site)) and where.endswith("True")
    # The runtime's compat package sits beside the runtime in the artifact.
    assert run_in_job(artifact, "import racetrack_job_wrapper.call as c; print(c.call_job.__name__)") == "call_job"

    # A second job with other requirements builds its own venv but reuses the layer.
    more: list[str] = []
    second = build(tmp_path, cache, {"job.py": FORM_JOB, "requirements.txt": "six\n"}, more)
    assert "racetrack-compat: reusing layer" in "\n".join(more)
    assert second.command[0] != artifact.command[0]
    assert len(list((cache / "racetrack-compat").glob("*/site"))) == 1


@pytest.mark.slow
def test_the_jobs_own_pins_win_over_the_layer(tmp_path: Path) -> None:
    lines: list[str] = []
    artifact = build(tmp_path, tmp_path / "cache", {"job.py": FORM_JOB, "requirements.txt": "PyYAML==6.0.1\n"}, lines)
    assert run_in_job(artifact, "import yaml; print(yaml.__version__)") == "6.0.1"


def test_a_job_without_the_layer_has_no_pth_file_and_a_cached_build_reuses_its_venv(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    lines: list[str] = []
    artifact = build(tmp_path, cache, {"job.py": PLAIN_JOB}, lines)
    venv = Path(artifact.command[0]).parent.parent
    assert not list(venv.glob("lib/python*/site-packages/racetrack_compat.pth"))
    assert not (cache / "racetrack-compat").exists()
    again: list[str] = []
    assert build(tmp_path, cache, {"job.py": PLAIN_JOB}, again).command == artifact.command
    assert any(line.startswith("reusing virtualenv") for line in again)


def test_a_layer_that_cannot_install_fails_only_builds_that_asked_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # uv offline with an empty package cache: the layer's packages can't be had.
    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "empty-uv-cache"))
    lines: list[str] = []
    artifact = build(tmp_path, tmp_path / "cache", {"job.py": FORM_JOB}, lines)
    assert any(line.startswith("warning: building without the racetrack-compat packages:") for line in lines)
    venv = Path(artifact.command[0]).parent.parent
    assert not list(venv.glob("lib/python*/site-packages/racetrack_compat.pth"))
    with pytest.raises(BuildFailed, match="the racetrack-compat layer failed to install"):
        build(tmp_path, tmp_path / "cache", {"job.py": PLAIN_JOB}, [], racetrack_compat=True)
