"""`trackside admin ...` works on the store directly, with no server running (recovery)."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from trackside.auth.service import AuthService
from trackside.auth.users import authenticate
from trackside.config import load_settings
from trackside.store.database import Database


def trackside(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trackside.cli.main", *args], input=stdin, capture_output=True, text=True, timeout=120
    )


def test_create_user_set_password_and_generate_auth_without_a_server(tmp_path: Path, database_url: str) -> None:
    where = ["--data-dir", str(tmp_path / "data"), "--database-url", database_url]
    created = trackside(
        "admin", "create-user", "ops@example.com", "--staff", "--password-stdin", *where, stdin="Tangerine-Orbit-88\n"
    )
    assert created.returncode == 0, created.stderr
    assert "Tangerine" not in created.stdout + created.stderr

    weak = trackside("admin", "set-password", "ops@example.com", "--password-stdin", *where, stdin="123\n")
    assert weak.returncode == 1 and "too short" in weak.stderr
    changed = trackside(
        "admin", "set-password", "ops@example.com", "--password-stdin", *where, stdin="Another-Fine-Phrase-42\n"
    )
    assert changed.returncode == 0, changed.stderr
    missing = trackside("admin", "set-password", "nobody", "--password-stdin", *where, stdin="Another-Fine-Phrase-42\n")
    assert missing.returncode == 1 and "nobody not found" in missing.stderr

    generated = trackside("admin", "generate-auth", "recovery", *where)
    assert generated.returncode == 0, generated.stderr
    token = generated.stdout.strip()

    settings = load_settings(data_dir=tmp_path / "data", database_url=database_url)
    db = Database(settings.resolved_database_url)
    try:
        with db.session() as session:
            user = authenticate(session, "ops@example.com", "Another-Fine-Phrase-42")
            assert user.is_staff and user.is_active
        caller = AuthService.from_settings(settings, db).resolve(token)
        assert caller.is_internal and caller.display == "Internal recovery"
    finally:
        db.dispose()
    assert stat.S_IMODE((tmp_path / "data" / "auth.key").stat().st_mode) == 0o600


def test_a_password_is_never_read_from_a_non_terminal_without_password_stdin(tmp_path: Path) -> None:
    result = trackside("admin", "create-user", "x@example.com", "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 1 and "--password-stdin" in result.stderr
