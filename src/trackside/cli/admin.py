"""`trackside admin ...`: recovery and bootstrap commands that work on the store directly.

They need no running server, only the same settings (`--data-dir`, `--database-url`, `--config`)
as `trackside up`, so an operator locked out of every account can get back in.
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
    name="admin", help="Manage accounts and tokens on the store directly (no server needed).", no_args_is_help=True
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
