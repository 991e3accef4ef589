"""`trackside esc ...` and `trackside grant ...`: external service consumers and who may call whom.

Staff commands against the lifecycle API (`/escs`, `/auth/allow/...`). A token is printed on
stdout alone, so it can be captured (`TOKEN=$(trackside esc token ID)`); everything else goes to
stderr or into a table.
"""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import quote

import typer

from trackside.cli.common import RemoteOption, open_client

esc_app = typer.Typer(
    name="esc", help="External service consumers: programs outside the platform that call jobs.", no_args_is_help=True
)
grant_app = typer.Typer(
    name="grant", help="Allow an ESC or a job family to call (or read...) a job family.", no_args_is_help=True
)

ScopeOption = Annotated[str, typer.Option("--scope", help="call_job, read_job, deploy_job, delete_job, ...")]
VersionNarrow = Annotated[str | None, typer.Option("--version", help="Only this job version.")]
EndpointNarrow = Annotated[str | None, typer.Option("--endpoint", help="Only this endpoint path.")]


def _q(value: str) -> str:
    return quote(value, safe="")


def _when(value: Any) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value)) if isinstance(value, int) else "-"


@esc_app.command("create")
def create(name: Annotated[str, typer.Argument(help="A name for the consumer.")], remote: RemoteOption = None) -> None:
    """Create an ESC; prints its id (stderr) and its first token (stdout)."""
    with open_client(remote) as client:
        answer = client.request("POST", "/escs", json={"name": name})
    typer.echo(f"ESC {answer['name']} created with id {answer['id']}", err=True)
    typer.echo(answer["token"])


@esc_app.command("list")
def list_escs(remote: RemoteOption = None) -> None:
    """List ESCs."""
    with open_client(remote) as client:
        escs = client.request("GET", "/escs") or []
    typer.echo("ID\tNAME")
    for esc in escs:
        typer.echo(f"{esc['id']}\t{esc['name']}")


@esc_app.command("token")
def token(
    esc_id: Annotated[str, typer.Argument(help="The ESC's id.")],
    expires_in: Annotated[int | None, typer.Option("--expires-in", min=1, help="Seconds until it expires.")] = None,
    remote: RemoteOption = None,
) -> None:
    """Issue one more token for an ESC (optionally expiring) and print it."""
    expiry = int(time.time()) + expires_in if expires_in else None
    with open_client(remote) as client:
        answer = client.request("POST", f"/escs/{_q(esc_id)}/auth_token", json={"expiry_time": expiry})
    typer.echo(f"token {answer['id']} issued (expires {_when(answer.get('expiry_time'))})", err=True)
    typer.echo(answer["token"])


@esc_app.command("tokens")
def tokens(esc_id: Annotated[str, typer.Argument(help="The ESC's id.")], remote: RemoteOption = None) -> None:
    """List an ESC's tokens (ids, state, expiry; not their values)."""
    with open_client(remote) as client:
        data = client.request("GET", f"/escs/{_q(esc_id)}/auth_data")
    typer.echo("TOKEN ID\tACTIVE\tEXPIRES\tLAST USED")
    for row in data.get("tokens", []):
        typer.echo(f"{row['id']}\t{row['active']}\t{_when(row.get('expiry_time'))}\t{_when(row.get('last_use_time'))}")


@esc_app.command("revoke")
def revoke(
    esc_id: Annotated[str, typer.Argument(help="The ESC's id.")],
    token_id: Annotated[str, typer.Argument(help="The token's id (see `trackside esc tokens`).")],
    remote: RemoteOption = None,
) -> None:
    """Revoke one ESC token; the gateway stops accepting it within its cache TTL."""
    with open_client(remote) as client:
        client.request("DELETE", f"/escs/{_q(esc_id)}/auth_token/{_q(token_id)}")
    typer.echo(f"token {token_id} revoked", err=True)


def _narrow(version: str | None, endpoint: str | None) -> dict[str, str]:
    return {k: v for k, v in (("version", version), ("endpoint", endpoint)) if v}


def _grant(
    remote: str | None, grantee: str, family: str, scope: str, version: str | None, endpoint: str | None
) -> None:
    """Allow `grantee` (a path: `esc/{id}`, `job_family/{name}`) SCOPE on a job family."""
    with open_client(remote) as client:
        client.request(
            "POST", f"/auth/allow/{grantee}/job/{_q(family)}/scope/{_q(scope)}", params=_narrow(version, endpoint)
        )


@grant_app.command("esc")
def grant_esc(
    esc_id: Annotated[str, typer.Argument(help="The ESC's id.")],
    family: Annotated[str, typer.Argument(help="The job family (job name).")],
    scope: ScopeOption = "call_job",
    version: VersionNarrow = None,
    endpoint: EndpointNarrow = None,
    remote: RemoteOption = None,
) -> None:
    """Allow an ESC SCOPE (default call_job) on a job family."""
    _grant(remote, f"esc/{_q(esc_id)}", family, scope, version, endpoint)
    typer.echo(f"ESC {esc_id} may now {scope} on {family}", err=True)


@grant_app.command("family")
def grant_family(
    source: Annotated[str, typer.Argument(help="The calling job family.")],
    target: Annotated[str, typer.Argument(help="The job family it may call.")],
    scope: ScopeOption = "call_job",
    version: VersionNarrow = None,
    endpoint: EndpointNarrow = None,
    remote: RemoteOption = None,
) -> None:
    """Allow jobs of SOURCE to call TARGET (one way only)."""
    _grant(remote, f"job_family/{_q(source)}", target, scope, version, endpoint)
    typer.echo(f"job family {source} may now {scope} on {target}", err=True)
