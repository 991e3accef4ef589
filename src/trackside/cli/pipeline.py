"""`trackside pipeline ...`: start pipeline runs and follow them, list, inspect, cancel and retry them.

They speak the pipelines API at the remote's root (`/api/runs...`, chainr's API), with the token
stored for the remote. `run` prints the run's uid on stdout, follows its events (server-sent) with one
line per step change on stderr, and exits with the run's outcome: 0 SUCCESSFUL, 1 FAILED,
2 CANCELED (`--detach` returns at once, 0).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer
from rich.table import Table
from rich.text import Text

from trackside.cli.client import AUTH_HEADER, error_from_response, iter_sse_data, unreachable
from trackside.cli.common import RemoteOption, open_client, stdout_console, stdout_is_tty
from trackside.errors import InvalidInput
from trackside.pipelines.conditions import STATUS_COLOURS

pipeline_app = typer.Typer(name="pipeline", help="Pipeline runs (chainr's format, and ours).", no_args_is_help=True)

EXIT_CODES = {"SUCCESSFUL": 0, "FAILED": 1, "CANCELED": 2}
RunArgument = Annotated[str, typer.Argument(help="The run's uid.")]


class PipelineApi:
    """The pipelines API of one remote: `{root}/api/...`, where the lifecycle URL is `{root}/lifecycle`."""

    def __init__(self, remote: str | None) -> None:
        client = open_client(remote)
        client.close()
        self.root = client.lifecycle_url.removesuffix("/lifecycle")
        headers = {AUTH_HEADER: client.token} if client.token else {}
        self.http = httpx.Client(base_url=self.root, headers=headers, timeout=httpx.Timeout(60.0, connect=10.0))

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> PipelineApi:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise unreachable(self.root, exc) from None
        if response.is_error:
            raise error_from_response(response)
        return response.json() if response.content else None

    @contextmanager
    def stream(self, path: str, params: dict[str, Any] | None = None) -> Iterator[Iterator[str]]:
        """The lines of a server-sent event stream (`data:` values)."""
        try:
            with self.http.stream("GET", path, params=params, timeout=httpx.Timeout(None, connect=10.0)) as response:
                if response.is_error:
                    response.read()
                    raise error_from_response(response)
                yield iter_sse_data(response.iter_lines())
        except httpx.HTTPError as exc:
            raise unreachable(self.root, exc) from None


def _q(value: str) -> str:
    return quote(value, safe="")


def parse_params(values: list[str] | None) -> dict[str, Any]:
    """`-p key=value` pairs; a value that is JSON (number, true, object...) is taken as such."""
    params: dict[str, Any] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"-p {item!r}: expected key=value")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def load_pipeline(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"pipeline file {path}: {exc}") from None
    try:
        body = json.loads(text)
    except ValueError:
        from trackside.manifest.load import parse_yaml

        body = parse_yaml(text, f"pipeline file {path}")
    if not isinstance(body, dict):
        raise InvalidInput(f"pipeline file {path}: expected a JSON object with kind and jobs")
    return body


def _progress(event: dict[str, Any]) -> str:
    who = f"job {event['job']}" if event.get("job") else "run"
    attempt = f" (attempt {event['attempt']})" if event.get("attempt") and event["attempt"] > 1 else ""
    reason = f": {event['reason']}" if event.get("reason") else ""
    return f"{event['timestamp'][11:19]} {who} {event['status']}{attempt}{reason}"


def follow_run(api: PipelineApi, uid: str) -> str:
    """Print the run's events as they come (stderr) until it ends; its final status."""
    with api.stream(f"/api/runs/{_q(uid)}/events") as lines:
        for line in lines:
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            if "status" not in event:
                continue
            typer.echo(_progress(event), err=True)
            sys.stderr.flush()
    status = str(api.request("GET", f"/api/runs/{_q(uid)}")["status"])
    return status


def _finish(api: PipelineApi, uid: str, detach: bool) -> None:
    if detach:
        return
    status = follow_run(api, uid)
    typer.echo(f"run {uid} {status}", err=True)
    raise typer.Exit(EXIT_CODES.get(status, 1))


@pipeline_app.command("run")
def run(
    file: Annotated[Path, typer.Argument(help="The pipeline, JSON (or YAML).")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="key=value over the pipeline's params.")
    ] = None,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Print the run's uid and return.")] = False,
    remote: RemoteOption = None,
) -> None:
    """Start a run of the pipeline in FILE and follow it; exits 0 when it is SUCCESSFUL."""
    from trackside.pipelines.validation import apply_params

    body = apply_params(load_pipeline(file), parse_params(param))
    with PipelineApi(remote) as api:
        answer = api.request("POST", "/api/runs", json=body)
        uid = str(answer["metadata"]["uid"])
        typer.echo(uid)
        sys.stdout.flush()
        _finish(api, uid, detach)


def _bar(jobs: list[dict[str, Any]]) -> Text:
    text = Text()
    for job in jobs:
        text.append("■", style=STATUS_COLOURS.get(job["status"], "white"))
    return text


@pipeline_app.command("list")
def list_runs(
    status: Annotated[str | None, typer.Option("--status", help="Only runs with this status.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many, newest first.")] = 50,
    remote: RemoteOption = None,
) -> None:
    """List pipeline runs, newest first."""
    params: dict[str, Any] = {"limit": limit}
    if status:
        params["status"] = status
    with PipelineApi(remote) as api:
        answer = api.request("GET", "/api/runs", params=params)
    columns = ("UID", "STATUS", "JOBS", "CREATED", "PIPELINE")
    rows = []
    for item in answer["items"]:
        meta = item["metadata"]
        pipeline = meta.get("pipeline") or {}
        name = f"{pipeline['name']} v{pipeline['version']}" if pipeline else ""
        rows.append((meta["uid"], item["status"], item["jobs"], (meta.get("createdAt") or "")[:19], name))
    if not stdout_is_tty():
        typer.echo("\t".join(columns))
        for uid, run_status, jobs, created, name in rows:
            done = sum(1 for job in jobs if job["status"] in ("SUCCESSFUL", "FAILED", "SKIPPED", "CANCELED"))
            typer.echo("\t".join((uid, run_status, f"{done}/{len(jobs)}", created, name)))
        return
    table = Table(*columns, box=None, pad_edge=False)
    for uid, run_status, jobs, created, name in rows:
        table.add_row(uid, Text(run_status, style=STATUS_COLOURS.get(run_status, "")), _bar(jobs), created, name)
    stdout_console().print(table)
    stdout_console().print(f"{answer['metadata'].get('active', 0)} active run(s)")


@pipeline_app.command("status")
def status(run_uid: RunArgument, remote: RemoteOption = None) -> None:
    """A run's status and its jobs'."""
    with PipelineApi(remote) as api:
        answer = api.request("GET", f"/api/runs/{_q(run_uid)}")
    typer.echo(f"run {run_uid} {answer['status']}" + (f": {answer['reason']}" if answer.get("reason") else ""))
    for job in answer["jobs"]:
        attempt = f" attempt {job['attempt']}" if job.get("attempt", 0) > 1 else ""
        reason = f"  ({job['reason']})" if job.get("reason") else ""
        outputs = f"  outputs {json.dumps(job['outputs'])}" if job.get("outputs") else ""
        typer.echo(f"  {job['name']}\t{job['status']}{attempt}{reason}{outputs}")


@pipeline_app.command("logs")
def logs(
    run_uid: RunArgument,
    step: Annotated[str, typer.Argument(help="The job (step) name.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the step ends.")] = False,
    attempt: Annotated[int | None, typer.Option("--attempt", min=1, help="This attempt (default: the latest).")] = None,
    remote: RemoteOption = None,
) -> None:
    """Print a step's log."""
    path = f"/api/runs/{_q(run_uid)}/jobs/{_q(step)}/logs"
    params: dict[str, Any] = {"attempt": attempt} if attempt else {}
    with PipelineApi(remote) as api:
        if not follow:
            try:
                response = api.http.get(path, params=params)
            except httpx.HTTPError as exc:
                raise unreachable(api.root, exc) from None
            if response.is_error:
                raise error_from_response(response)
            typer.echo(response.text, nl=not response.text.endswith("\n") and bool(response.text))
            return
        try:
            with api.stream(path, params={**params, "follow": "true"}) as lines:
                for line in lines:
                    if line == "{}":
                        continue
                    typer.echo(line)
                    sys.stdout.flush()
        except KeyboardInterrupt:
            return


@pipeline_app.command("cancel")
def cancel(run_uid: RunArgument, remote: RemoteOption = None) -> None:
    """Cancel a run: running steps are killed, pending ones skipped."""
    with PipelineApi(remote) as api:
        api.request("POST", f"/api/runs/{_q(run_uid)}/cancel")
    typer.echo(f"run {run_uid} is being canceled", err=True)


@pipeline_app.command("retry")
def retry(
    run_uid: RunArgument,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Print the new run's uid and return.")] = False,
    remote: RemoteOption = None,
) -> None:
    """Start a new run keeping the successful steps (and outputs) of RUN; re-runs the rest."""
    with PipelineApi(remote) as api:
        answer = api.request("POST", f"/api/runs/{_q(run_uid)}/retry")
        uid = str(answer["metadata"]["uid"])
        typer.echo(uid)
        sys.stdout.flush()
        _finish(api, uid, detach)
