"""`trackside audit`: the audit log; `trackside maintenance`: switch maintenance mode."""

from __future__ import annotations

from typing import Annotated

import typer

from trackside.cli.common import RemoteOption, open_client


def audit(
    job: Annotated[str | None, typer.Option("--job", help="Only events of this job family (job name).")] = None,
    version: Annotated[str | None, typer.Option("--version", help="Only this job version (with --job).")] = None,
    mine: Annotated[bool, typer.Option("--mine", help="Only events I did or that concern me.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many, latest first.")] = 100,
    remote: RemoteOption = None,
) -> None:
    """Show the audit log: who changed what, when, and on which job."""
    params: dict[str, str | int] = {"limit": limit, "related_to_me": str(mine).lower()}
    if job:
        params["job_name"] = job
    if version:
        params["job_version"] = version
    with open_client(remote) as client:
        answer = client.request("GET", "/audit/activity", params=params)
    typer.echo("TIME\tEVENT\tJOB\tBY\tWHAT")
    for event in answer.get("events", []):
        job_text = " ".join(p for p in (event.get("job_name"), event.get("job_version")) if p) or "-"
        typer.echo(
            f"{event['timestamp']}\t{event['event_type']}\t{job_text}\t"
            f"{event.get('username_executor') or '-'}\t{event['explanation']}"
        )


def maintenance(
    state: Annotated[str | None, typer.Argument(help="on, off, or nothing to show it.")] = None,
    remote: RemoteOption = None,
) -> None:
    """Show or switch maintenance mode (staff): while on, deploys and deletes are refused."""
    if state not in (None, "on", "off"):
        raise typer.BadParameter("expected on, off, or nothing", param_hint="STATE")
    with open_client(remote) as client:
        if state is None:
            answer = client.request("GET", "/settings/maintenance")
        else:
            answer = client.request("PUT", "/settings/maintenance", json={"enabled": state == "on"})
    typer.echo(f"maintenance mode is {'on' if answer['maintenance_mode'] else 'off'}")
