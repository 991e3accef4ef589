"""`trackside validate`: check a job's manifest locally and print it merged (extends + `-e`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trackside.cli.common import warn

OverridesOption = Annotated[
    list[str] | None,
    typer.Option(
        "-e",
        "--extra-var",
        metavar="KEY=VALUE",
        help="Override a manifest field (dotted KEY, VALUE parsed as YAML); repeatable.",
    ),
]


def validate(
    directory: Annotated[Path, typer.Argument(help="Job directory or manifest file.")] = Path("."),
    overrides: OverridesOption = None,
) -> None:
    """Validate the job manifest and print it merged, as YAML."""
    from trackside.manifest.load import load_manifest, manifest_to_yaml

    manifest = load_manifest(directory, overrides or ())
    for warning in manifest.warnings:
        warn(warning)
    typer.echo(manifest_to_yaml(manifest), nl=False)
