"""The first admin: on the first start of an empty store, `admin` with a random password.

The password is printed once (to a terminal only, never into a log file) and written to
`{data_dir}/admin-password` (mode 0600), so a headless start can still be logged into; delete the
file after changing the password. Several
processes starting at once agree: a unique username means only one insert wins.

Every start also makes the data dir readable by the platform's user alone (mode 0700) and its
secrets 0600: the auth and secrets keys, this password file and the SQLite database with its
journal files, whatever mode an operator or an older version left them with.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sys
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from trackside.auth.crypto import KEY_FILENAME as SECRETS_KEY_FILENAME
from trackside.auth.keys import KEY_FILENAME as AUTH_KEY_FILENAME
from trackside.auth.users import create_user
from trackside.files import write_private
from trackside.store.auth_models import User
from trackside.store.database import Database

log = logging.getLogger(__name__)

ADMIN_USERNAME = "admin"
PASSWORD_FILENAME = "admin-password"


def admin_password_path(data_dir: Path) -> Path:
    return data_dir / PASSWORD_FILENAME


def restrict_data_dir(db: Database, data_dir: Path) -> None:
    """Mode 0700 for the data dir and 0600 for its secret files, where this user owns them."""
    private = [data_dir / AUTH_KEY_FILENAME, data_dir / SECRETS_KEY_FILENAME, admin_password_path(data_dir)]
    if db.is_sqlite and (database := make_url(db.url).database):
        private += [Path(database + suffix) for suffix in ("", "-wal", "-shm", "-journal")]
    for path, mode in [(data_dir, 0o700), *((p, 0o600) for p in private)]:
        with contextlib.suppress(OSError):  # missing, or not ours to change
            st = path.stat()
            if st.st_uid == os.geteuid() and st.st_mode & 0o777 != mode:
                path.chmod(mode)
                log.info("made %s readable by its owner only (mode %o)", path, mode)


def ensure_first_admin(db: Database, data_dir: Path) -> str | None:
    """Create the first admin if there are no users; returns its password (None if users exist).

    Restricts the modes of the data dir and its secret files first (`restrict_data_dir`).
    """
    restrict_data_dir(db, data_dir)
    with db.session() as session:
        if session.scalar(select(func.count()).select_from(User)):
            return None
    password = secrets.token_urlsafe(18)
    try:
        with db.session() as session:
            create_user(session, ADMIN_USERNAME, password, active=True, staff=True)
    except IntegrityError:
        return None  # another process created it first
    path = admin_password_path(data_dir)
    write_private(path, password + "\n")
    # The password itself goes only to a terminal: stdout captured into a log file must not hold it.
    shown = f"password {password}" if sys.stdout.isatty() else "password in the file below"
    print(
        f"Created the first admin account: username {ADMIN_USERNAME!r}, {shown}\n"
        f"(kept in {path}, readable by you only; change it with `trackside admin set-password admin`)",
        flush=True,
    )
    return password
