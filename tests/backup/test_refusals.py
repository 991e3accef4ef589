"""What backup and restore refuse, in one line and leaving nothing half-made.

An existing archive file, an archive inside the data dir, a target that is not fresh, a damaged,
tampered or hostile archive. These run on a data dir made by the admin commands (no server).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from tests.cli.support import Cli
from tests.support.archives import Entry, file, files_under, hardlink, overflow_escape, symlink
from trackside.backup.archive import extract
from trackside.backup.manifest import MANIFEST_NAME, MARKER_NAME, BackupManifest, marker_bytes
from trackside.errors import InvalidInput

PASSWORD = "Copper-Meadow-Violin-38\n"


@pytest.fixture
def cli() -> Cli:
    return Cli()


def where(data_dir: Path) -> list[str]:
    return ["--data-dir", str(data_dir), "--database-url", f"sqlite:///{data_dir / 'trackside.db'}"]


@pytest.fixture
def data_dir(tmp_path: Path, cli: Cli) -> Path:
    """A data dir with a user, its plugins dir holding a file (made as an operator would, no server)."""
    data = tmp_path / "data"
    made = cli("admin", "create-user", "ops@example.com", "--password-stdin", *where(data), input=PASSWORD)
    assert made.exit_code == 0, made.output
    (data / "plugins").mkdir()
    (data / "plugins" / "installed.json").write_text("[]")
    return data


@pytest.fixture
def archive(tmp_path: Path, data_dir: Path, cli: Cli) -> Path:
    path = tmp_path / "backup.tar.gz"
    result = cli("admin", "backup", str(path), *where(data_dir))
    assert result.exit_code == 0, result.output
    return path


def one_line_error(result: object) -> str:
    stderr = result.stderr  # type: ignore[attr-defined]
    assert result.exit_code == 1, stderr  # type: ignore[attr-defined]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return str(lines[0])


def leftovers(directory: Path) -> list[str]:
    """Temporary or staging files a failed command left beside its target."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# -- backup ----------------------------------------------------------------------------------------


def test_backup_refuses_to_overwrite_an_existing_file_unless_forced(
    tmp_path: Path, data_dir: Path, archive: Path, cli: Cli
) -> None:
    before = b"someone's file, not an archive\n"  # two backups in one second can be byte-identical
    archive.write_bytes(before)
    error = one_line_error(cli("admin", "backup", str(archive), *where(data_dir)))
    assert "exists" in error and "--force" in error
    assert archive.read_bytes() == before and leftovers(tmp_path) == []
    forced = cli("admin", "backup", str(archive), "--force", *where(data_dir))
    assert forced.exit_code == 0, forced.output
    assert archive.read_bytes()[:2] == b"\x1f\x8b"  # replaced by a new (gzipped) archive


def test_backup_refuses_to_write_inside_a_directory_it_archives(data_dir: Path, cli: Cli) -> None:
    for inside in (data_dir / "backup.tar.gz", data_dir / "plugins" / "backup.tar.gz"):
        error = one_line_error(cli("admin", "backup", str(inside), *where(data_dir)))
        assert "inside" in error
        assert not inside.exists() and leftovers(inside.parent) == []


def test_backup_of_a_data_dir_without_a_database_is_refused_and_creates_none(tmp_path: Path, cli: Cli) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    error = one_line_error(cli("admin", "backup", str(tmp_path / "b.tar.gz"), *where(empty)))
    assert "no database" in error
    assert list(empty.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_an_archive_is_readable_by_its_owner_only_and_has_no_keys_unless_asked(
    tmp_path: Path, data_dir: Path, archive: Path, cli: Cli
) -> None:
    assert archive.stat().st_mode & 0o077 == 0
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert names[0] == MARKER_NAME and names[-1] == MANIFEST_NAME
    assert "database/trackside.db" in names and "plugins/installed.json" in names
    assert not [n for n in names if n.startswith("keys/")]
    with_keys = tmp_path / "with-keys.tar.gz"
    result = cli("admin", "backup", str(with_keys), "--include-keys", *where(data_dir))
    assert result.exit_code == 0 and "WARNING" in result.stderr
    with tarfile.open(with_keys) as tar:
        assert {"keys/auth.key", "keys/secrets.key"} <= set(tar.getnames())


# -- restore ---------------------------------------------------------------------------------------


def test_restore_into_a_fresh_data_dir_brings_the_users_back(tmp_path: Path, archive: Path, cli: Cli) -> None:
    fresh = tmp_path / "fresh"
    result = cli("admin", "restore", str(archive), *where(fresh))
    assert result.exit_code == 0, result.stderr
    assert "generate-auth" in result.stderr  # no keys in this archive: the recovery is printed
    assert (fresh / "plugins" / "installed.json").read_text() == "[]"
    again = cli("admin", "set-password", "ops@example.com", "--password-stdin", *where(fresh), input=PASSWORD)
    assert again.exit_code == 0, again.stderr  # the user is there
    assert leftovers(tmp_path) == []


def test_restore_refuses_a_data_dir_that_is_not_fresh_unless_forced(data_dir: Path, archive: Path, cli: Cli) -> None:
    (data_dir / "plugins" / "mine.txt").write_text("kept until forced")
    error = one_line_error(cli("admin", "restore", str(archive), *where(data_dir)))
    assert "not" in error and "--force" in error and str(data_dir) in error
    assert (data_dir / "plugins" / "mine.txt").is_file() and leftovers(data_dir.parent) == []
    forced = cli("admin", "restore", str(archive), "--force", *where(data_dir))
    assert forced.exit_code == 0, forced.stderr
    assert not (data_dir / "plugins" / "mine.txt").exists()
    assert leftovers(data_dir.parent) == []


@pytest.mark.postgres
def test_restore_refuses_a_postgresql_database_with_tables(tmp_path: Path, postgres_url: str, cli: Cli) -> None:
    from trackside.store.database import Database

    data = tmp_path / "pg-data"
    data.mkdir()
    db = Database(postgres_url)
    db.migrate()
    db.dispose()
    backup = tmp_path / "pg.tar.gz"
    made = cli("admin", "backup", str(backup), "--data-dir", str(data), "--database-url", postgres_url)
    assert made.exit_code == 0, made.stderr
    fresh = tmp_path / "fresh"
    error = one_line_error(
        cli("admin", "restore", str(backup), "--data-dir", str(fresh), "--database-url", postgres_url)
    )
    assert "tables" in error and "--force" in error
    assert not fresh.exists()
    forced = cli("admin", "restore", str(backup), "--force", "--data-dir", str(fresh), "--database-url", postgres_url)
    assert forced.exit_code == 0, forced.stderr


def test_a_damaged_archive_is_refused_and_nothing_is_made(tmp_path: Path, archive: Path, cli: Cli) -> None:
    data = archive.read_bytes()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(data[: len(data) // 2])
    flipped = tmp_path / "flipped.tar.gz"
    flipped.write_bytes(data[:200] + bytes([data[200] ^ 0xFF]) + data[201:])
    not_ours = tmp_path / "not-ours.tar.gz"
    not_ours.write_bytes(_tar_gz([("database/trackside.db", b"x")], marker=False))
    no_database = tmp_path / "no-database.tar.gz"
    no_database.write_bytes(_tar_gz([("plugins/installed.json", b"[]")]))
    text = tmp_path / "notes.txt"
    text.write_text("not an archive at all")
    fresh = tmp_path / "fresh"
    for bad in (truncated, flipped, not_ours, no_database, text):
        error = one_line_error(cli("admin", "restore", str(bad), *where(fresh)))
        assert str(bad) in error
        assert not fresh.exists(), f"{bad.name} left {fresh}"
        assert leftovers(tmp_path) == [], bad.name


def test_a_member_changed_after_the_backup_fails_its_checksum(tmp_path: Path, archive: Path, cli: Cli) -> None:
    members, manifest = _members(archive)
    members["plugins/installed.json"] = b'[{"planted": true}]'
    tampered = tmp_path / "tampered.tar.gz"
    tampered.write_bytes(_tar_gz(list(members.items()), manifest=manifest))
    error = one_line_error(cli("admin", "restore", str(tampered), *where(tmp_path / "fresh")))
    assert "checksum" in error and "plugins/installed.json" in error
    assert not (tmp_path / "fresh").exists()


def test_a_member_missing_from_the_archive_is_refused(tmp_path: Path, archive: Path, cli: Cli) -> None:
    members, manifest = _members(archive)
    del members["plugins/installed.json"]
    short = tmp_path / "short.tar.gz"
    short.write_bytes(_tar_gz(list(members.items()), manifest=manifest))
    error = one_line_error(cli("admin", "restore", str(short), *where(tmp_path / "fresh")))
    assert "missing" in error and "plugins/installed.json" in error


@pytest.mark.parametrize(
    "attack",
    [
        [file("../outside/planted", "x")],
        [file("/tmp/planted", "x")],
        [symlink("data/escape", "../../outside"), file("data/escape/planted", "x")],
        [file("data/victim", "x"), hardlink("data/link", "../outside/target")],
    ],
    ids=["dot-dot", "absolute", "write-through-link", "hard-link"],
)
def test_a_hostile_archive_writes_nothing_outside_its_staging_directory(tmp_path: Path, attack: list[Entry]) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target").write_text("untouched")
    staging = tmp_path / "staging"
    staging.mkdir()
    hostile = tmp_path / "hostile.tar.gz"
    hostile.write_bytes(_hostile(attack))
    with pytest.raises(InvalidInput):
        extract(hostile, staging)
    assert files_under(outside) == {"target": b"untouched"}


def test_the_path_max_link_overflow_plants_nothing_outside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    staging = tmp_path / "s"
    staging.mkdir()
    entries = [
        Entry(e.kind, f"data/{e.name}", e.data, e.link)
        for e in [*overflow_escape(staging / "data", outside), file("escape/planted", "owned")]
    ]
    hostile = tmp_path / "overflow.tar.gz"
    hostile.write_bytes(_hostile(entries))
    with pytest.raises(InvalidInput):
        extract(hostile, staging)
    assert files_under(outside) == {}


# -- archives made by hand -------------------------------------------------------------------------


def _members(archive: Path) -> tuple[dict[str, bytes], bytes]:
    """The archive's data members (not its marker and manifest) by name, and its manifest."""
    found, manifest = {}, b""
    with tarfile.open(archive) as tar:
        for member in tar:
            handle = tar.extractfile(member)
            if handle is not None and member.name == MANIFEST_NAME:
                manifest = handle.read()
            elif handle is not None and member.name != MARKER_NAME:
                found[member.name] = handle.read()
    return found, manifest


def _tar_gz(members: list[tuple[str, bytes]], *, marker: bool = True, manifest: bytes | None = None) -> bytes:
    """An archive as `trackside admin backup` writes one, the manifest listing exactly `members`."""
    if manifest is None:
        files = {name: hashlib.sha256(data).hexdigest() for name, data in members}
        manifest = BackupManifest(
            data_dir="/old", plugins_dir="/old/plugins", database="sqlite", files=files
        ).to_bytes()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [*([(MARKER_NAME, marker_bytes())] if marker else []), *members, (MANIFEST_NAME, manifest)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue())


def _hostile(entries: list[Entry]) -> bytes:
    """A well-formed backup (marker, manifest with right checksums) whose members are `entries`."""
    files = {}
    for entry in entries:
        if entry.kind == "file":
            files[entry.name] = hashlib.sha256(entry.data).hexdigest()
        elif entry.kind in ("symlink", "hardlink"):
            files[entry.name] = "link:" + entry.link
    manifest = BackupManifest(data_dir="/old", plugins_dir="/old/plugins", database="sqlite", files=files)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        marker = tarfile.TarInfo(MARKER_NAME)
        marker.size = len(marker_bytes())
        tar.addfile(marker, io.BytesIO(marker_bytes()))
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            content = None
            if entry.kind == "file":
                info.size, content = len(entry.data), io.BytesIO(entry.data)
            elif entry.kind == "dir":
                info.type = tarfile.DIRTYPE
            elif entry.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, entry.link
            else:
                info.type, info.linkname = tarfile.LNKTYPE, entry.link
            tar.addfile(info, content)
        data = manifest.to_bytes()
        info = tarfile.TarInfo(MANIFEST_NAME)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
