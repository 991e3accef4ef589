"""`trackside move NAME --version V --infrastructure T`: take a job version to another target.

Racetrack's `racetrack move`; the API call returns once the job serves from the new target.
"""

from __future__ import annotations

from typing import Annotated

import httpx
import typer

from trackside.cli.client import job_path
from trackside.cli.common import RemoteOption, open_client

MOVE_TIMEOUT = httpx.Timeout(1800.0, connect=10.0)  # a move builds for the new target first


def move(
    name: Annotated[str, typer.Argument(help="Job name.")],
    version: Annotated[str, typer.Option("--version", help="Exact job version.")],
    infrastructure: Annotated[
        str, typer.Option("--infrastructure", "--infrastructure-target", help="Target to move the job to.")
    ],
    remote: RemoteOption = None,
) -> None:
    """Move a job version to another infrastructure target without a gap in service."""
    with open_client(remote) as client:
        job = client.request(
            "POST",
            f"{job_path(name, version)}/move",
            json={"infrastructure_target": infrastructure},
            timeout=MOVE_TIMEOUT,
        )
    typer.echo(f"moved {name} {version} to {job.get('infrastructure_target') or infrastructure}", err=True)
    typer.echo(job.get("pub_url") or f"{name} {version}")
