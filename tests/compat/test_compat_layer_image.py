"""The racetrack-compat layer in a python3 job's image: installed offline into /opt/racetrack-compat, seen
through the venv's .pth file after the job's own packages (the docker target's twin of the local build)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.infra.docker.support import build, docker_settings, python_manifest, remove_images, require_engine, unique

from trackside.infra.docker.engine import DockerEngine

pytestmark = [pytest.mark.docker, pytest.mark.slow]

FORM_JOB = """
from fastapi import FastAPI, Form


class Job:
    def perform(self) -> str:
        import python_multipart

        return python_multipart.__name__

    def webview_app(self, base_url):
        app = FastAPI()

        @app.post("/form")
        async def form(name: str = Form("")):
            return {"hello": name}

        return app
"""


def run_in(engine: DockerEngine, image: str, *command: str) -> str:
    return engine.run(["run", "--rm", "--network", "none", "--entrypoint", command[0], image, *command[1:]]).stdout


def test_an_image_of_a_job_importing_fastapi_has_the_layer(tmp_path: Path) -> None:
    engine = require_engine()
    settings = docker_settings(tmp_path)
    lines: list[str] = []
    image = build(
        engine, settings, tmp_path / "ws", python_manifest(unique("compat")), {"job.py": FORM_JOB}, lines.append
    )
    try:
        reason = "racetrack-compat packages: on (the job imports fastapi, python_multipart)"
        assert any(reason in line for line in lines), lines
        code = (
            "import sys, fastapi, python_multipart, site; "
            "print(fastapi.__file__); "
            "print(sys.path.index(site.getsitepackages()[0]) < sys.path.index('/opt/racetrack-compat'))"
        )
        out = run_in(engine, image, "/job-venv/bin/python", "-c", code).split()
        assert out[0].startswith("/opt/racetrack-compat/fastapi/") and out[1] == "True"
        wrapper = "import racetrack_job_wrapper.call as c; print(c.call_job.__name__)"
        assert run_in(engine, image, "/job-venv/bin/python", "-c", wrapper).strip() == "call_job"
    finally:
        remove_images(engine, image)


def test_an_image_of_a_plain_job_has_no_layer(tmp_path: Path) -> None:
    engine = require_engine()
    settings = docker_settings(tmp_path)
    job = "class Job:\n    def perform(self):\n        return 1\n"
    image = build(engine, settings, tmp_path / "ws", python_manifest(unique("plain")), {"job.py": job})
    try:
        listing = run_in(engine, image, "/bin/sh", "-c", "ls /opt; ls /job-venv/lib/python3*/site-packages")
        assert "racetrack-compat" not in listing and "racetrack_compat.pth" not in listing
    finally:
        remove_images(engine, image)
