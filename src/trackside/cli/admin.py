"""`trackside admin ...`: recovery, bootstrap and backup commands that work on the store directly.

They need no running server, only the same settings (`--data-dir`, `--database-url`, `--config`)
as `trackside up`, so an operator locked out of every account can get back in. `backup` runs
beside a live platform; `restore` wants it stopped (docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from trackside.cli.auth import read_password
from trackside.cli.server import ConfigOption, DatabaseUrlOption, DataDirOption

if TYPE_CHECKING:
    from trackside.config import Settings
    from trackside.store.database import Database

admin_app = typer.Typer(
    name="admin",
    help="Manage accounts, tokens and backups on the store directly (no server needed).",
    no_args_is_help=True,
)

PasswordStdinOption = Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")]


@contextmanager
def _store(config: Path | None, data_dir: Path | None, database_url: str | None) -> Iterator[tuple[Database, Settings]]:
    """The store the settings name, migrated, and the settings; the store's connections are closed after."""
    from trackside.config import load_settings
    from trackside.store.database import Database

    settings = load_settings(config, data_dir=data_dir, database_url=database_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    try:
        db.migrate()
        yield db, settings
    finally:
        db.dispose()


def _ask_new_password(password_stdin: bool) -> str:
    password = read_password(password_stdin, "New password: ")
    if not password_stdin and read_password(False, "Repeat it: ") != password:
        from trackside.errors import InvalidInput

        raise InvalidInput("the two passwords differ")
    return password


@admin_app.command("create-user")
def create_user(
    name: Annotated[str, typer.Argument(help="The username.")],
    staff: Annotated[bool, typer.Option("--staff", help="Make the user an administrator (full access).")] = False,
    password_stdin: PasswordStdinOption = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Create an active user (with the default permissions; --staff adds full access)."""
    from trackside.auth.users import create_user as create
    from trackside.lifecycle import audit

    with _store(config, data_dir, database_url) as (db, _settings):
        password = _ask_new_password(password_stdin)
        with db.session() as session:
            create(session, name, password, active=True, staff=staff)
            audit.record(session, audit.EventType.USER_CREATED, "trackside admin", subject=name, staff=staff)
    typer.echo(f"user {name} created{' (staff)' if staff else ''}", err=True)


@admin_app.command("set-password")
def set_password(
    name: Annotated[str, typer.Argument(help="The username.")],
    password_stdin: PasswordStdinOption = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Set a user's password (and activate the account)."""
    from trackside.auth.users import get_user
    from trackside.auth.users import set_password as set_pw
    from trackside.lifecycle import audit

    with _store(config, data_dir, database_url) as (db, _settings):
        password = _ask_new_password(password_stdin)
        with db.session() as session:
            user = get_user(session, name)
            set_pw(session, user, password)
            user.is_active = True
            audit.record(session, audit.EventType.PASSWORD_CHANGED, "trackside admin", subject=name)
    typer.echo(f"password of {name} set", err=True)


@admin_app.command("activate")
def activate(
    name: Annotated[str, typer.Argument(help="The username.")],
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Activate a registered account."""
    from trackside.auth.users import get_user
    from trackside.lifecycle import audit

    with _store(config, data_dir, database_url) as (db, _settings), db.session() as session:
        get_user(session, name).is_active = True
        audit.record(session, audit.EventType.USER_ACTIVATED, "trackside admin", subject=name)
    typer.echo(f"user {name} activated", err=True)


@admin_app.command("generate-auth")
def generate_auth(
    subject: Annotated[str, typer.Argument(help="Who the token is for (a name shown as its caller).")],
    scope: Annotated[list[str] | None, typer.Option("--scope", help="Limit the token to these scopes.")] = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Print an internal token (full access unless --scope limits it), as Racetrack's generate-auth.

    It is not stored, so it can't be revoked except by changing the auth key: keep it safe and
    use it for recovery (e.g. re-signing tokens after a key change).
    """
    from trackside.auth.scopes import parse_scope
    from trackside.auth.service import AuthService

    with _store(config, data_dir, database_url) as (db, settings):
        scopes = [parse_scope(s).value for s in scope] if scope else None
        token = AuthService.from_settings(settings, db).internal_token(subject, scopes)
    typer.echo(token)


ForceOption = Annotated[bool, typer.Option("--force", help="Replace what is there.")]


def _settings_options(data_dir: Path | None, database_url: str | None, config: Path | None) -> str:
    """The settings flags a command was given, for the commands it tells the operator to run next."""
    parts = []
    if config:
        parts.append(f"--config {config}")
    if data_dir:
        parts.append(f"--data-dir {data_dir}")
    if database_url:
        from sqlalchemy.engine import make_url

        parts.append(f"--database-url '{make_url(database_url).render_as_string(hide_password=True)}'")
    return " ".join(parts)


@admin_app.command("backup")
def backup(
    file: Annotated[Path, typer.Argument(help="The archive to write (outside the data dir).")],
    include_keys: Annotated[
        bool,
        typer.Option(
            "--include-keys", help="Put auth.key and secrets.key in the archive too (it then needs guarding)."
        ),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite FILE if it exists.")] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Write one consistent archive of the platform, while it runs (docs/operations.md).

    It holds the database, the plugins, the local target's builds (or the image list of container
    targets) and the job secrets, still encrypted; the keys only with --include-keys.
    """
    from trackside.backup.keys import WARNING
    from trackside.backup.service import backup as run_backup
    from trackside.config import load_settings

    settings = load_settings(config, data_dir=data_dir, database_url=database_url)
    manifest = run_backup(settings, file, force=force, include_keys=include_keys)
    typer.echo(
        f"backup written to {file}: {manifest.database} database, {len(manifest.jobs)} jobs, "
        f"{len(manifest.files)} files{', keys included' if include_keys else ', no keys'}",
        err=True,
    )
    if include_keys:
        typer.secho(WARNING, err=True, fg=typer.colors.RED, bold=True)
    else:
        typer.echo(
            "the keys are not in it: a platform restored from it needs the recovery steps in docs/operations.md "
            "(or restore this data dir's auth.key and secrets.key yourself)",
            err=True,
        )


@admin_app.command("restore")
def restore(
    file: Annotated[Path, typer.Argument(help="An archive written by `trackside admin backup`.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace the data dir's content and the database's tables.")
    ] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Bring a fresh data dir and an empty database back to the archive's state (the platform stopped).

    `trackside up` then serves every job that was running. Restored without the keys, old tokens
    stay refused until the printed recovery steps are done.
    """
    from trackside.backup.keys import recovery_steps
    from trackside.backup.service import restore as run_restore
    from trackside.config import load_settings

    settings = load_settings(config, data_dir=data_dir, database_url=database_url)
    report = run_restore(settings, file, force=force)
    manifest = report.manifest
    typer.echo(
        f"restored {file} (made {manifest.created} from {manifest.data_dir}): {manifest.database} database, "
        f"{len(manifest.jobs)} jobs; start the platform with `trackside up`",
        err=True,
    )
    if report.images:
        typer.echo(
            "jobs on container targets run these images; they must still be in their registry or engine:", err=True
        )
        for image in report.images:
            typer.echo(
                f"  {image.job_name} {image.job_version} ({image.target}): {image.image} {image.digest}", err=True
            )
    options = _settings_options(data_dir, database_url, config)
    api = f"http://{settings.host}:{settings.port}/lifecycle/api/v1"
    if not report.keys.restored:
        typer.echo(
            "The archive holds no keys (made without --include-keys): new keys are made at the first start.", err=True
        )
        typer.echo(recovery_steps(options, api), err=True)
    elif report.keys.overridden:
        typer.echo(
            f"The archive's keys were restored, but these settings override them: {', '.join(report.keys.overridden)}.",
            err=True,
        )
        typer.echo(recovery_steps(options, api), err=True)
