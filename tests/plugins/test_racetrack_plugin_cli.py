"""Racetrack's own client (`racetrack plugin install|list|uninstall`) against `trackside up`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.plugins.support import EXAMPLE_PLUGINS
from tests.support.platform import RunningPlatform

from trackside.plugins.bundle import bundle_plugin

pytestmark = pytest.mark.slow

RACETRACK_CLIENT = "racetrack-client==2.35.1"


@pytest.fixture(scope="session")
def racetrack_cli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import uv

    venv = tmp_path_factory.mktemp("racetrack-client") / "venv"
    try:
        subprocess.run(
            [uv.find_uv_bin(), "venv", "--python", sys.executable, str(venv)], check=True, capture_output=True
        )
        subprocess.run(
            [uv.find_uv_bin(), "pip", "install", "--python", str(venv / "bin" / "python"), RACETRACK_CLIENT],
            check=True,
            capture_output=True,
            timeout=300,
        )
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"installing {RACETRACK_CLIENT} failed: {exc.stderr.decode(errors='replace')}")
    return venv / "bin" / "racetrack"


def test_racetrack_plugin_install_list_and_uninstall(
    racetrack_cli: Path, platform: RunningPlatform, tmp_path: Path
) -> None:
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir()

    def racetrack(*args: str) -> str:
        result = subprocess.run([str(racetrack_cli), *args], capture_output=True, text=True, env=env, timeout=180)
        assert result.returncode == 0, f"racetrack {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result.stdout + result.stderr

    racetrack("set", "remote", platform.url)
    racetrack("login", platform.admin_token)
    bundle = bundle_plugin(EXAMPLE_PLUGINS / "static-job-type", out_dir=tmp_path / "dist")
    racetrack("plugin", "install", str(bundle))
    assert "static:1.0.0" in racetrack("plugin", "list", "--job-types")
    assert "static-job-type" in racetrack("plugin", "list")
    racetrack("plugin", "install", str(bundle), "--replace")
    racetrack("plugin", "uninstall", "static-job-type", "--version", "1.0.0")
    assert "static:1.0.0" not in racetrack("plugin", "list", "--job-types")
