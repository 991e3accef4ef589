"""`trackside set ...` / `trackside get ...`: the client config, as `racetrack set/get`."""

from __future__ import annotations

from typing import Annotated

import typer

from trackside.cli.config import load_client_config, resolve_remote_url, save_client_config

set_app = typer.Typer(name="set", help="Change the client configuration.", no_args_is_help=True)
get_app = typer.Typer(name="get", help="Show the client configuration.", no_args_is_help=True)


@set_app.command("remote")
def set_remote(
    remote: Annotated[str, typer.Argument(help="Lifecycle URL, host[:port], or an alias.")],
) -> None:
    """Set the remote that commands use when --remote is not given."""
    config = load_client_config()
    resolved = resolve_remote_url(config.remote_aliases.get(remote, remote))
    config.remote = remote if remote in config.remote_aliases else resolved
    path = save_client_config(config)
    typer.echo(f"remote set to {resolved} (in {path})", err=True)


@set_app.command("alias")
def set_alias(
    alias: Annotated[str, typer.Argument(help="Short name, usable wherever a remote is expected.")],
    remote: Annotated[str, typer.Argument(help="Lifecycle URL or host[:port].")],
) -> None:
    """Name a remote, e.g. `trackside set alias prod racetrack.example.com`."""
    config = load_client_config()
    config.remote_aliases[alias] = resolve_remote_url(remote)
    save_client_config(config)
    typer.echo(f"alias {alias} -> {config.remote_aliases[alias]}", err=True)


@get_app.command("remote")
def get_remote() -> None:
    """Print the lifecycle URL commands talk to ($TRACKSIDE_REMOTE, else the one set, else the default)."""
    typer.echo(load_client_config().resolve_remote())
