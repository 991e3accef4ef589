"""Commands on deployed jobs: list, delete, redeploy, logs, build-logs, call.

They mirror `racetrack` (docs/architecture.md, "Compatibility contracts"). Tables are Rich on a terminal and
tab-separated text otherwise, so the output pipes into `cut`/`awk` without parsing box drawing.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.json import JSON
from rich.table import Table

from trackside.cli.client import AUTH_HEADER, error_from_response, unreachable
from trackside.cli.common import RemoteOption, VersionOption, open_client, stdout_console, stdout_is_tty
from trackside.errors import InvalidInput, TracksideError

DEFAULT_ENDPOINT = "/api/v1/perform"
CALL_TIMEOUT = httpx.Timeout(300.0, connect=10.0)

NameArgument = Annotated[str, typer.Argument(help="Job name.")]
ExactVersionOption = Annotated[str, typer.Option("--version", help="Exact job version.")]

LIST_COLUMNS = ("NAME", "VERSION", "STATUS", "TARGET", "URL")


def job_rows(jobs: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """One row per job, sorted by name then most recently updated first."""
    ordered = sorted(jobs, key=lambda job: (str(job.get("name", "")), -int(job.get("update_time") or 0)))
    return [
        (
            str(job.get("name", "")),
            str(job.get("version", "")),
            str(job.get("status") or "").upper(),
            str(job.get("infrastructure_target") or ""),
            str(job.get("pub_url") or ""),
        )
        for job in ordered
    ]


def list_jobs(remote: RemoteOption = None) -> None:
    """List deployed jobs."""
    with open_client(remote) as client:
        rows = job_rows(client.list_jobs())
    if not stdout_is_tty():
        for row in (LIST_COLUMNS, *rows):
            typer.echo("\t".join(row))
        return
    table = Table(*LIST_COLUMNS, box=None, pad_edge=False)
    for row in rows:
        table.add_row(*row)
    stdout_console().print(table)


def delete(name: NameArgument, version: ExactVersionOption, remote: RemoteOption = None) -> None:
    """Delete a job version from the platform."""
    with open_client(remote) as client:
        client.delete_job(name, version)
    typer.echo(f"deleted {name} {version}", err=True)


def redeploy(name: NameArgument, version: ExactVersionOption, remote: RemoteOption = None) -> None:
    """Rebuild and redeploy a job version from its stored manifest."""
    with open_client(remote) as client:
        client.redeploy_job(name, version)
        job = client.get_job(name, version)
    typer.echo(f"redeployed {name} {version}", err=True)
    typer.echo(job.get("pub_url") or f"{name} {version}")


def _print_logs(text: str) -> None:
    typer.echo(text, nl=not text.endswith("\n") and bool(text))


def logs(
    name: NameArgument,
    version: VersionOption = "latest",
    tail: Annotated[int, typer.Option("--tail", min=0, help="Number of last lines (0: all).")] = 20,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")] = False,
    remote: RemoteOption = None,
) -> None:
    """Print a job's runtime logs."""
    if not follow:
        with open_client(remote) as client:
            _print_logs(client.job_logs(name, version, tail))
        return
    # Ctrl-C is how a follow ends, so it is a clean exit at any point, connecting included.
    try:
        with open_client(remote) as client, client.stream_logs(name, version, tail) as lines:
            for line in lines:
                typer.echo(line)
                sys.stdout.flush()
    except KeyboardInterrupt:
        return


def build_logs(
    name: NameArgument,
    version: VersionOption = "latest",
    tail: Annotated[int, typer.Option("--tail", min=0, help="Number of last lines (0: all).")] = 0,
    remote: RemoteOption = None,
) -> None:
    """Print the build logs of a job's latest deployment."""
    with open_client(remote) as client:
        _print_logs(client.build_logs(name, version, tail))


def parse_payload(text: str) -> Any:
    """A call payload from JSON or YAML text, `@FILE`, or `-` (stdin)."""
    source = "PAYLOAD"
    if text == "-":
        text, source = sys.stdin.read(), "PAYLOAD (stdin)"
    elif text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"PAYLOAD file {path}: {exc}") from None
        source = f"PAYLOAD file {path}"
    try:
        return json.loads(text)
    except ValueError:
        pass
    from trackside.manifest.load import parse_yaml

    return parse_yaml(text, source)


def curl_command(url: str, payload: Any, token: str | None) -> str:
    """The curl command line that makes the same call (shell-quoted)."""
    parts = ["curl", "-X", "POST", url, "-H", "Content-Type: application/json"]
    if token:
        parts += ["-H", f"{AUTH_HEADER}: {token}"]
    parts += ["-d", json.dumps(payload)]
    return " ".join(shlex.quote(part) for part in parts)


def call(
    name: NameArgument,
    args: Annotated[
        list[str],
        typer.Argument(
            metavar="[ENDPOINT] PAYLOAD",
            help=f"ENDPOINT (default {DEFAULT_ENDPOINT}) and the JSON/YAML payload, @FILE or - for stdin.",
        ),
    ],
    version: VersionOption = "latest",
    curl: Annotated[bool, typer.Option("--curl", help="Print the equivalent curl command instead of calling.")] = False,
    remote: RemoteOption = None,
) -> None:
    """Call a job's endpoint with a payload and print the JSON answer."""
    if len(args) == 1:
        endpoint, raw_payload = DEFAULT_ENDPOINT, args[0]
    elif len(args) == 2:
        endpoint, raw_payload = args
    else:
        raise typer.BadParameter(f"expected [ENDPOINT] PAYLOAD, got {len(args)} arguments", param_hint="ARGS")
    payload = parse_payload(raw_payload)
    endpoint = endpoint if endpoint.startswith("/") else "/" + endpoint
    with open_client(remote) as client:
        job = client.get_job(name, version)
        pub_url = job.get("pub_url")
        if not pub_url:
            raise TracksideError(f"job {name} {job.get('version', version)} has no URL (status {job.get('status')})")
        url = str(pub_url).rstrip("/") + endpoint
        if curl:
            typer.echo(curl_command(url, payload, client.token))
            return
        try:
            response = httpx.post(url, json=payload, headers=client.auth_headers, timeout=CALL_TIMEOUT)
        except httpx.HTTPError as exc:
            raise unreachable(url, exc) from None
    if response.is_error:
        raise error_from_response(response)
    try:
        answer = response.json()
    except ValueError:
        typer.echo(response.text)
        return
    if stdout_is_tty():
        stdout_console().print(JSON.from_data(answer))
    else:
        typer.echo(json.dumps(answer, indent=2, ensure_ascii=False))
