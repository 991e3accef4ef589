"""Dumping and loading the store: SQLite through its online backup API, PostgreSQL through pg_dump/psql.

A dump is consistent while the platform writes: SQLite's backup API copies one snapshot of the
database, and for PostgreSQL the state the backup reads (its job list) and `pg_dump` share one
exported snapshot. Loading is all or nothing: SQLite's file is checked and then renamed into
place, PostgreSQL's dump runs in a single transaction that stops at the first error.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal, TypeVar

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL, Connection, make_url

from trackside.errors import InvalidInput
from trackside.store.database import Database, normalize_url

DatabaseKind = Literal["sqlite", "postgresql"]
MEMBERS: dict[DatabaseKind, str] = {"sqlite": "database/trackside.db", "postgresql": "database/postgresql.sql"}
PG_TIMEOUT_S = 3600

T = TypeVar("T")


def kind_of(url: str) -> DatabaseKind:
    backend = make_url(normalize_url(url)).get_backend_name()
    if backend == "sqlite":
        return "sqlite"
    if backend == "postgresql":
        return "postgresql"
    raise InvalidInput(f"backup supports SQLite and PostgreSQL databases, not {backend}")


def sqlite_path(url: str) -> Path:
    database = make_url(normalize_url(url)).database
    if not database or database == ":memory:":
        raise InvalidInput("an in-memory SQLite database can't be backed up or restored")
    return Path(database)


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection string for the client tools, with the password in their environment only."""
    parsed: URL = make_url(normalize_url(url))
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise InvalidInput(f"`{name}` is needed for PostgreSQL backups and restores: install the PostgreSQL client")
    return path


def dump(db: Database, destination: Path, read: Callable[[Connection], T]) -> T:
    """Write the database to `destination`; `read` sees the very state that was dumped."""
    if db.is_sqlite:
        path = sqlite_path(db.url)
        if not path.is_file():  # connecting would create an empty one
            raise InvalidInput(f"no database at {path}: check --data-dir and --database-url")
        source = sqlite3.connect(path, timeout=30)
        target = sqlite3.connect(destination)
        try:
            source.backup(target)  # the online backup API: one consistent copy while others write
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        finally:
            target.close()
            source.close()
        engine = create_engine(f"sqlite:///{destination}")
        try:
            with engine.connect() as connection:
                return read(connection)
        finally:
            engine.dispose()
    conninfo, env = _libpq(db.url)
    with db.engine.connect() as connection:
        connection.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
        state = read(connection)
        command = [
            _tool("pg_dump"),
            "--format=plain",
            "--no-owner",
            "--no-privileges",
            f"--snapshot={snapshot}",
            f"--file={destination}",
            f"--dbname={conninfo}",
        ]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=PG_TIMEOUT_S)
        connection.rollback()
    if result.returncode != 0:
        raise InvalidInput(f"pg_dump failed: {_last_line(result.stderr)}")
    return state


def _last_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


@contextlib.contextmanager
def _engine(url: str) -> Iterator[Connection]:
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def tables(url: str) -> list[str]:
    """The tables of the database at `url` (none for a SQLite file that does not exist)."""
    if kind_of(url) == "sqlite" and not sqlite_path(url).exists():
        return []
    try:
        with _engine(url) as connection:
            return sorted(inspect(connection).get_table_names())
    except Exception as exc:  # unreachable server, not a database file
        raise InvalidInput(
            f"cannot read the database at {make_url(normalize_url(url)).render_as_string()}: {exc}"
        ) from None


def check_can_load(url: str, kind: DatabaseKind) -> None:
    target = kind_of(url)
    if target != kind:
        raise InvalidInput(
            f"the archive holds a {kind} database and the target is {target}: restore it into a {kind} "
            "database (moving between SQLite and PostgreSQL is not supported)"
        )
    if target == "postgresql":
        _tool("psql")


def load(url: str, dump_file: Path, kind: DatabaseKind, *, replace: bool) -> None:
    """Load `dump_file` into the database at `url`; with `replace`, its tables go first (same transaction)."""
    check_can_load(url, kind)
    if kind == "sqlite":
        _load_sqlite(sqlite_path(url), dump_file)
        return
    conninfo, env = _libpq(url)
    drops = "".join(f'DROP TABLE IF EXISTS "{name}" CASCADE;\n' for name in (tables(url) if replace else []))
    script = drops.encode() + dump_file.read_bytes()
    command = [_tool("psql"), "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-d", conninfo]
    result = subprocess.run(command, input=script, env=env, capture_output=True, timeout=PG_TIMEOUT_S)
    if result.returncode != 0:
        raise InvalidInput(
            f"loading the PostgreSQL dump failed, nothing was changed: {_last_line(result.stderr.decode())}"
        )


def _load_sqlite(path: Path, dump_file: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.restore")
    shutil.copyfile(dump_file, tmp)
    os.chmod(tmp, 0o600)
    try:
        connection = sqlite3.connect(tmp)
        try:
            verdict = connection.execute("PRAGMA integrity_check").fetchone()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        tmp.unlink(missing_ok=True)
        raise InvalidInput(f"the archive's SQLite database is not usable: {exc}") from None
    if not verdict or verdict[0] != "ok":
        tmp.unlink(missing_ok=True)
        raise InvalidInput(f"the archive's SQLite database fails its integrity check: {verdict}")
    # A journal left by the database being replaced would be applied to the restored one: gone first.
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    os.replace(tmp, path)


def schema_revision(connection: Connection) -> str:
    try:
        return str(connection.execute(text("SELECT version_num FROM alembic_version")).scalar() or "")
    except Exception:
        return ""


def check_revision_known(revision: str) -> None:
    """Refuse a database made by a newer Trackside (its schema revision is unknown here)."""
    if not revision:
        return
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from trackside.store.database import MIGRATIONS_DIR

    try:
        ScriptDirectory(str(MIGRATIONS_DIR)).get_revision(revision)
    except CommandError:
        raise InvalidInput(
            f"the archive's database has schema revision {revision}, unknown to this Trackside: "
            "restore it with the version that made it (or a newer one)"
        ) from None
