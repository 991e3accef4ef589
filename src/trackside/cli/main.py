"""The `trackside` command: wires the command modules together and owns error presentation.

Expected failures (a `TracksideError`, an API error, an unreachable remote, a bad file) are shown
as one `error: ...` line on stderr with exit code 1, never as a traceback; `_Group.invoke` is the
one place that decides this, so every command, nested ones included, behaves the same. Usage
errors keep Typer's exit code 2.
"""

from __future__ import annotations

import logging
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Annotated, Any

import httpx
import typer
from typer.core import TyperGroup

from trackside.cli import admin, audit, auth, deploy, escs, jobs, manifest, move, registry_clean, remote, server
from trackside.cli.pipeline import pipeline_app
from trackside.cli.plugins import plugin_app
from trackside.errors import TracksideError

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def fail(message: str, code: int = EXIT_ERROR) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


class _Group(TyperGroup):
    """Turns expected exceptions into one-line errors for every (sub)command."""

    def invoke(self, ctx: Any) -> Any:  # Any: typer's Context class moved between releases
        try:
            return super().invoke(ctx)
        except TracksideError as exc:
            fail(exc.message)
        except httpx.HTTPError as exc:
            fail(f"HTTP request failed: {exc}")
        except OSError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            fail("interrupted", EXIT_INTERRUPTED)
        return None


app = typer.Typer(
    name="trackside",
    cls=_Group,
    help="Deploy Python classes and Dockerfiles as operated microservices, and run the platform.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class _StderrHandler(logging.Handler):
    """Writes to the current `sys.stderr` and shows each warning once (manifest warnings can repeat)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            if record.levelno >= logging.WARNING and record.levelno < logging.ERROR:
                if text in self.seen:
                    return
                self.seen.add(text)
            sys.stderr.write(text + "\n")
        except Exception:  # noqa: BLE001 - logging must never break a command
            self.handleError(record)


class _UserFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def setup_logging(verbose: bool) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StderrHandler):
            root.removeHandler(handler)
    handler = _StderrHandler()
    if verbose:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.setLevel(logging.DEBUG)
        logging.getLogger("httpcore").setLevel(logging.INFO)
    else:
        handler.setFormatter(_UserFormatter())
        root.setLevel(logging.WARNING)
    root.addHandler(handler)


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show debug logs.")] = False,
) -> None:
    setup_logging(verbose)


@app.command("version")
def show_version() -> None:
    """Print the Trackside version."""
    try:
        typer.echo(f"trackside {package_version('trackside')}")
    except PackageNotFoundError:
        typer.echo("trackside (unknown version: package metadata missing)")


app.command("deploy")(deploy.deploy)
app.command("validate")(manifest.validate)
app.command("list")(jobs.list_jobs)
app.command("delete")(jobs.delete)
app.command("redeploy")(jobs.redeploy)
app.command("logs")(jobs.logs)
app.command("build-logs")(jobs.build_logs)
app.command("call")(jobs.call)
app.command("up")(server.up)
app.command("serve")(server.serve)
app.add_typer(remote.set_app)
app.add_typer(remote.get_app)
app.command("login")(auth.login)
app.command("logout")(auth.logout)
remote.get_app.command("auth-token")(auth.get_auth_token)
app.add_typer(admin.admin_app)
admin.admin_app.command("registry-clean")(registry_clean.registry_clean)
app.command("move")(move.move)
app.add_typer(escs.esc_app)
app.add_typer(escs.grant_app)
app.command("audit")(audit.audit)
app.command("maintenance")(audit.maintenance)
app.add_typer(plugin_app)
app.add_typer(pipeline_app)


if __name__ == "__main__":
    app()
