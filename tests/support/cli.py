"""Our CLI as a user runs it: a real `python -m trackside.cli.main` process per command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.support.platform import RunningPlatform

Cli = Callable[..., subprocess.CompletedProcess[str]]


def trackside_cli(platform: RunningPlatform, config_dir: Path) -> Cli:
    """Our CLI with its own client config, logged in to the platform as admin. Each call runs one
    command; with `check` (the default) a non-zero exit fails the test, naming the command."""
    env = {**os.environ, "TRACKSIDE_CLIENT_CONFIG": str(config_dir), "TRACKSIDE_REMOTE": platform.url}

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "trackside.cli.main", *args], capture_output=True, text=True, env=env, timeout=180
        )
        if check:
            assert result.returncode == 0, f"trackside {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result

    run("login", platform.admin_token)
    return run
