"""What every command group shares: the `--remote` option, opening a client, output helpers.

Output goes through `typer.echo` (plain) or a Rich console created per call, because the test
runner swaps `sys.stdout`/`sys.stderr` between invocations and a console made at import time would
keep writing to the old streams.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer
from rich.console import Console

from trackside.cli.client import LifecycleClient
from trackside.cli.config import REMOTE_ENV_VAR, load_client_config

log = logging.getLogger("trackside.cli")

RemoteOption = Annotated[
    str | None,
    typer.Option(
        "--remote",
        envvar=REMOTE_ENV_VAR,
        show_envvar=True,
        help="Lifecycle URL or alias (default: `trackside get remote`).",
    ),
]

VersionOption = Annotated[str, typer.Option("--version", help="Job version: exact, `latest` or `1.x`.")]


def open_client(remote: str | None) -> LifecycleClient:
    """A client for `remote` (or the current remote) carrying the token stored for it, if any."""
    config = load_client_config()
    url = config.resolve_remote(remote)
    log.debug("lifecycle API: %s", url)
    return LifecycleClient(url, token=config.token_for(url))


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()


def stdout_console() -> Console:
    return Console(file=sys.stdout, highlight=False)


def stderr_console() -> Console:
    return Console(file=sys.stderr, highlight=False)


def warn(message: str) -> None:
    """A warning for the user on stderr (deduplicated by the CLI's log handler)."""
    log.warning("%s", message)
