"""`trackside up` (the whole platform in one process) and `trackside serve COMPONENT`.

`trackside.platform` and the settings are imported inside the commands: they pull in the server
stack (FastAPI, SQLAlchemy, pydantic-settings) which client commands such as `deploy` should not
pay for at start-up.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from trackside.config import Settings

DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Where the database, builds and logs live (default ~/.trackside)."),
]
PortOption = Annotated[int | None, typer.Option("--port", min=1, max=65535, help="HTTP port (default 7070).")]
HostOption = Annotated[str | None, typer.Option("--host", help="Interface to listen on (default 127.0.0.1).")]
DatabaseUrlOption = Annotated[
    str | None, typer.Option("--database-url", help="SQLAlchemy URL; default: SQLite in the data dir.")
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="YAML settings file (default: $TRACKSIDE_CONFIG or DATA_DIR/config.yaml)."),
]


class Component(enum.StrEnum):
    lifecycle = "lifecycle"
    gateway = "gateway"
    supervisor = "supervisor"
    dashboard = "dashboard"


LifecycleUrlOption = Annotated[
    str | None,
    typer.Option("--lifecycle-url", help="The lifecycle API the gateway, supervisor or dashboard talk to."),
]


def _settings(
    config: Path | None,
    data_dir: Path | None,
    port: int | None,
    host: str | None,
    database_url: str | None,
    lifecycle_url: str | None = None,
) -> Settings:
    from trackside.config import load_settings

    return load_settings(
        config, data_dir=data_dir, port=port, host=host, database_url=database_url, lifecycle_url=lifecycle_url
    )


def up(
    data_dir: DataDirOption = None,
    port: PortOption = None,
    host: HostOption = None,
    database_url: DatabaseUrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Run the whole platform (lifecycle, gateway, supervisor, dashboard) in one process."""
    settings = _settings(config, data_dir, port, host, database_url)
    from trackside.platform import run_platform

    run_platform(settings)


def serve(
    component: Annotated[Component, typer.Argument(help="The component to run alone.")],
    data_dir: DataDirOption = None,
    port: PortOption = None,
    host: HostOption = None,
    database_url: DatabaseUrlOption = None,
    config: ConfigOption = None,
    lifecycle_url: LifecycleUrlOption = None,
) -> None:
    """Run one component of the platform alone (split deployments)."""
    settings = _settings(config, data_dir, port, host, database_url, lifecycle_url)
    from trackside.platform import run_component

    run_component(component.value, settings)
