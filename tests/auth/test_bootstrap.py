"""The first start: the first admin, and a data dir whose secrets only the platform's user can read."""

from __future__ import annotations

import stat
from pathlib import Path

from trackside.auth.bootstrap import ensure_first_admin
from trackside.store.database import Database


def test_first_start_makes_the_data_dir_and_its_secret_files_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    for name in ("auth.key", "secrets.key"):
        (data_dir / name).write_text("left readable by an operator")
        (data_dir / name).chmod(0o644)
    db = Database(f"sqlite:///{data_dir / 'trackside.db'}")
    db.migrate()
    (data_dir / "trackside.db").chmod(0o644)
    try:
        password = ensure_first_admin(db, data_dir)
    finally:
        db.dispose()

    assert password
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for name in ("auth.key", "secrets.key", "admin-password", "trackside.db"):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600, name
