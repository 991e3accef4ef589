"""`trackside plugin ...`: bundle a plugin directory, and install, list, download or remove plugins.

The remote commands call the same `/plugin` endpoints as `racetrack plugin ...` (docs/architecture.md, "Compatibility
contracts"); `install` sends the raw zip to `/plugin/upload/{filename}` exactly as Racetrack's client does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import httpx
import typer

from trackside.cli.client import error_from_response, unreachable
from trackside.cli.common import RemoteOption, open_client, stdout_console, stdout_is_tty
from trackside.errors import InvalidInput

# Installing runs the plugin's requirements through uv on the server: allow it the time that takes.
INSTALL_TIMEOUT = httpx.Timeout(900.0, connect=10.0)
LIST_COLUMNS = ("NAME", "VERSION", "PRIORITY", "CATEGORY", "BUILD DATE")

plugin_app = typer.Typer(
    name="plugin", help="Bundle, install, list, download and uninstall plugins.", no_args_is_help=True
)


def _path(name: str, version: str) -> str:
    return f"/plugin/{quote(name, safe='')}/{quote(version, safe='')}"


@plugin_app.command("bundle")
def bundle(
    plugin_dir: Annotated[Path, typer.Argument(help="The plugin directory.")] = Path("."),
    out: Annotated[Path | None, typer.Option("--out", help="Directory for the zip (default: the plugin's).")] = None,
    out_filename: Annotated[str | None, typer.Option("--out-filename", help="Zip file name.")] = None,
    plugin_version: Annotated[
        str | None, typer.Option("--plugin-version", help="Override the manifest's version.")
    ] = None,
) -> None:
    """Turn a plugin directory into NAME-VERSION.zip (honours .racetrackignore / .trackside-ignore)."""
    from trackside.plugins.bundle import bundle_plugin

    path = bundle_plugin(plugin_dir, out, out_filename, plugin_version)
    typer.echo(f"plugin bundled: {path}")


def _read_bundle(source: str) -> tuple[str, bytes]:
    """The file name and bytes of a local zip or an http(s) URL."""
    if source.startswith(("http://", "https://")):
        try:
            response = httpx.get(source, follow_redirects=True, timeout=INSTALL_TIMEOUT)
        except httpx.HTTPError as exc:
            raise InvalidInput(f"cannot download the plugin from {source}: {exc}") from None
        if response.is_error:
            raise InvalidInput(f"cannot download the plugin from {source}: HTTP {response.status_code}")
        name = Path(urlsplit(source).path).name or "plugin.zip"
        return name, response.content
    path = Path(source)
    if not path.is_file():
        raise InvalidInput(f"plugin bundle {source} not found (give a .zip file or an http(s) URL)")
    return path.name, path.read_bytes()


@plugin_app.command("install")
def install(
    source: Annotated[str, typer.Argument(help="A plugin .zip file or an http(s) URL of one.")],
    replace: Annotated[bool, typer.Option("--replace", help="Remove every other version first.")] = False,
    remote: RemoteOption = None,
) -> None:
    """Install a plugin bundle on the remote."""
    filename, data = _read_bundle(source)
    with open_client(remote) as client:
        manifest = client.request(
            "POST",
            f"/plugin/upload/{quote(filename, safe='')}",
            params={"replace": "1" if replace else "0"},
            content=data,
            headers={"Content-Type": "application/octet-stream"},
            timeout=INSTALL_TIMEOUT,
        )
    typer.echo(f"plugin {manifest.get('name')} {manifest.get('version')} installed")


@plugin_app.command("uninstall")
def uninstall(
    name: Annotated[str, typer.Argument(help="Plugin name.")],
    version: Annotated[str, typer.Option("--version", help="Exact plugin version.")],
    remote: RemoteOption = None,
) -> None:
    """Uninstall one version of a plugin."""
    with open_client(remote) as client:
        client.request("DELETE", _path(name, version))
    typer.echo(f"plugin {name} {version} uninstalled")


def _print_rows(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    if not stdout_is_tty():
        for row in (columns, *rows):
            typer.echo("\t".join(row))
        return
    from rich.table import Table

    table = Table(*columns, box=None, pad_edge=False)
    for row in rows:
        table.add_row(*row)
    stdout_console().print(table)


@plugin_app.command("list")
def list_plugins(
    job_types: Annotated[bool, typer.Option("--job-types", help="List the available job types instead.")] = False,
    remote: RemoteOption = None,
) -> None:
    """List installed plugins (or, with --job-types, every job type the remote offers)."""
    with open_client(remote) as client:
        if job_types:
            for version in client.request("GET", "/plugin/job_type/versions") or []:
                typer.echo(version)
            return
        plugins: list[dict[str, Any]] = client.request("GET", "/plugin") or []
    rows: list[tuple[str, ...]] = [
        (
            str(p.get("name")),
            str(p.get("version")),
            str(p.get("priority", 0)),
            str(p.get("category") or ""),
            str(p.get("build_date") or ""),
        )
        for p in plugins
    ]
    _print_rows(LIST_COLUMNS, rows)


@plugin_app.command("download")
def download(
    name: Annotated[str, typer.Argument(help="Plugin name.")],
    version: Annotated[str, typer.Argument(help="Exact plugin version.")],
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Where to write NAME-VERSION.zip.")] = Path("."),
    remote: RemoteOption = None,
) -> None:
    """Download an installed plugin's bundle."""
    with open_client(remote) as client:
        url = f"{client.api_url}{_path(name, version)}/download"
        try:
            response = httpx.get(url, headers=client.auth_headers, timeout=INSTALL_TIMEOUT)
        except httpx.HTTPError as exc:
            raise unreachable(client.lifecycle_url, exc) from None
        if response.is_error:
            raise error_from_response(response)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}-{version}.zip"
    target.write_bytes(response.content)
    typer.echo(f"plugin downloaded: {target}")
