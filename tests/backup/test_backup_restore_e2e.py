"""Back up a running platform, wipe it, restore it, start it: every job serves its old callers again.

Real `trackside up` processes and the real CLI; SQLite in the data dir, and PostgreSQL (restored
into another database and another data dir, so paths in builds move too). Without the keys, the
restore prints the recovery steps and following them gives working tokens again.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.backup.support import PASSWORD, add, call, populate, settings_args, trackside, until
from tests.conftest import EXAMPLES, postgres_database
from tests.support.platform import RunningPlatform, deploy_and_wait, start_platform
from tests.support.polling import wait_until

pytestmark = pytest.mark.slow


def _backup(data_dir: Path, database_url: str, archive: Path, *extra: str) -> str:
    result = trackside("admin", "backup", str(archive), *extra, *settings_args(data_dir, database_url))
    assert result.returncode == 0, result.stderr
    assert archive.is_file()
    return result.stderr


def _restore(data_dir: Path, database_url: str, archive: Path) -> str:
    result = trackside("admin", "restore", str(archive), *settings_args(data_dir, database_url))
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_a_platform_backed_up_with_its_keys_serves_old_tokens_after_a_wipe_and_restore(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    database_url = f"sqlite:///{data_dir / 'trackside.db'}"
    platform = start_platform(data_dir, database_url)
    try:
        made = populate(platform, tmp_path)
        archive = tmp_path / "backups" / "platform.tar.gz"
        archive.parent.mkdir()
        said = _backup(data_dir, database_url, archive, "--include-keys")  # while it runs
        assert "WARNING" in said and "keys" in said
        running = trackside("admin", "restore", str(archive), "--force", *settings_args(data_dir, database_url))
        assert running.returncode == 1 and "is running" in running.stderr, running.stderr
    finally:
        platform.stop()
    shutil.rmtree(data_dir)

    said = _restore(data_dir, database_url, archive)
    assert "generate-auth" not in said  # the keys came back: nothing to recover
    restored = start_platform(data_dir, database_url)
    restored.secrets.update({PASSWORD, made.esc_token, made.user_token, made.admin_password})
    try:
        assert until(lambda: add(restored, made.esc_token), 200).json() == 42
        assert until(lambda: call(restored, "secretjob", made.esc_token), 200).json() is True
        # Users, their tokens and grants are the old ones.
        me = httpx.get(f"{restored.api}/users/validate_user_auth", headers={"X-Racetrack-Auth": made.user_token})
        assert me.status_code == 200, me.text
        login = httpx.post(f"{restored.api}/users/login", json={"username": made.username, "password": PASSWORD})
        assert login.status_code == 200, login.text
        # The replicas started fresh; the supervisor's next pass over them records them running (a
        # pass that probed a replica still booting recorded an error until then).
        wait_until(
            lambda: job_statuses(restored, made.admin_token) == [("adder", "running"), ("secretjob", "running")],
            timeout=120,
            what="the restored jobs listed running",
        )
    finally:
        restored.stop()


@pytest.fixture
def two_postgres_databases() -> Iterator[tuple[str, str]]:
    for first in postgres_database():
        for second in postgres_database():
            yield first, second


@pytest.mark.postgres
def test_a_postgresql_platform_restores_into_an_empty_database_and_another_data_dir(
    tmp_path: Path, two_postgres_databases: tuple[str, str]
) -> None:
    source_url, target_url = two_postgres_databases
    platform = start_platform(tmp_path / "data", source_url)
    try:
        made = populate(platform, tmp_path)
        archive = tmp_path / "platform.tar.gz"
        _backup(tmp_path / "data", source_url, archive, "--include-keys")
    finally:
        platform.stop()

    moved = tmp_path / "elsewhere" / "data"
    _restore(moved, target_url, archive)
    restored = start_platform(moved, target_url)
    restored.secrets.update({PASSWORD, made.esc_token, made.user_token, made.admin_password})
    try:
        assert until(lambda: add(restored, made.esc_token), 200).json() == 42
        assert until(lambda: call(restored, "secretjob", made.esc_token), 200).json() is True
    finally:
        restored.stop()


def test_restored_without_keys_old_tokens_are_refused_until_the_printed_recovery_steps_are_followed(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    database_url = f"sqlite:///{data_dir / 'trackside.db'}"
    platform = start_platform(data_dir, database_url)
    try:
        made = populate(platform, tmp_path)
        archive = tmp_path / "platform.tar.gz"
        said = _backup(data_dir, database_url, archive)
        assert "WARNING" not in said and "keys are not in it" in said
    finally:
        platform.stop()
    shutil.rmtree(data_dir)

    said = _restore(data_dir, database_url, archive)
    # The command says exactly what to do.
    for step in (
        "trackside admin generate-auth admin",
        "/auth/token/user/all/regenerate",
        "/auth/token/esc/regenerate",
        "/auth/token/job_family/regenerate",
        "redeploy",
    ):
        assert step in said, said
    restored = start_platform(data_dir, database_url)
    restored.secrets.update({PASSWORD, made.esc_token, made.user_token, made.admin_password})
    try:
        assert add(restored, made.esc_token).status_code == 401
        assert httpx.get(f"{restored.api}/job", headers={"X-Racetrack-Auth": made.admin_token}).status_code == 401

        # 1-2: a full-access token from the store, made under the new key.
        generated = trackside("admin", "generate-auth", "admin", *settings_args(data_dir, database_url))
        assert generated.returncode == 0, generated.stderr
        internal = {"X-Racetrack-Auth": generated.stdout.strip()}
        restored.secrets.add(generated.stdout.strip())
        # 3: re-sign every stored token.
        for kind in ("user/all", "esc", "job_family"):
            response = httpx.post(f"{restored.api}/auth/token/{kind}/regenerate", headers=internal, timeout=30)
            assert response.status_code == 200, response.text
        login = httpx.post(f"{restored.api}/users/login", json={"username": "admin", "password": made.admin_password})
        assert login.status_code == 200, login.text
        admin_token = login.json()["token"]
        esc_token = httpx.get(f"{restored.api}/auth/token/esc/{made.esc_id}", headers=internal).json()["token"]
        restored.secrets.update({admin_token, esc_token})
        assert esc_token != made.esc_token
        # 4: redeploy the jobs (their own tokens and secrets were encrypted under the old key).
        restored._admin_token = admin_token  # the data dir has no admin-password file: it went with the keys
        result = deploy_and_wait(restored, EXAMPLES / "adder", force=True)
        assert result["status"] == "done", result
        assert until(lambda: add(restored, esc_token), 200).json() == 42
        assert add(restored, made.esc_token).status_code == 401
    finally:
        restored.stop()


def job_statuses(platform: RunningPlatform, token: str) -> list[tuple[str, str]]:
    jobs = httpx.get(f"{platform.api}/job", headers={"X-Racetrack-Auth": token}).json()
    return sorted((j["name"], j["status"]) for j in jobs)
