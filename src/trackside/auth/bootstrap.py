"""The first admin: on the first start of an empty store, `admin` with a random password.

The password is printed once (to a terminal only, never into a log file) and written to
`{data_dir}/admin-password` (mode 0600), so a headless start can still be logged into; delete the
file after changing the password. Several
processes starting at once agree: a unique username means only one insert wins.
"""

from __future__ import annotations

import logging
import secrets
import sys
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from trackside.auth.users import create_user
from trackside.files import write_private
from trackside.store.auth_models import User
from trackside.store.database import Database

log = logging.getLogger(__name__)

ADMIN_USERNAME = "admin"
PASSWORD_FILENAME = "admin-password"


def admin_password_path(data_dir: Path) -> Path:
    return data_dir / PASSWORD_FILENAME


def ensure_first_admin(db: Database, data_dir: Path) -> str | None:
    """Create the first admin if there are no users; returns its password (None if users exist)."""
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
