"""What a backup holds for jobs, read from the very database snapshot it dumps.

A job on the local target is never archived without its build (a backup that would lack one starts
again, then gives up saying why); a job on a container target is listed with its image.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from trackside.backup.service import ATTEMPTS, backup, restore
from trackside.config import Settings
from trackside.errors import InvalidInput
from trackside.store.database import Database
from trackside.store.models import Deployment, Job, JobFamily


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'trackside.db'}", docker_url="off")


def _add_job(settings: Settings, name: str, target: str, tag: str, image: str | None = None) -> None:
    db = Database(settings.resolved_database_url)
    db.migrate()
    try:
        with db.session() as session:
            family = JobFamily(name=name)
            session.add(family)
            session.flush()
            session.add(
                Job(
                    family_id=family.id,
                    name=name,
                    version="1.0.0",
                    status="running",
                    manifest=f"name: {name}\n",
                    image_tag=tag,
                    infrastructure_target=target,
                )
            )
            session.add(
                Deployment(
                    manifest="",
                    job_name=name,
                    job_version="1.0.0",
                    status="done",
                    tag=tag,
                    image_name=image,
                    infrastructure_target=target,
                )
            )
    finally:
        db.dispose()


def _write_build(data_dir: Path, name: str, tag: str) -> None:
    build = data_dir / "builds" / name / "1.0.0" / tag
    (build / "src" / "empty-but-needed").mkdir(parents=True)
    venv_python = data_dir / "cache" / "venvs" / "k1" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.symlink_to("/usr/bin/python3")
    command = [str(venv_python), "-m", "trackside_runtime"]
    (build / "artifact.json").write_text(json.dumps({"command": command, "cwd": str(build / "src"), "env": {}}))


def test_a_local_job_is_archived_with_its_build_and_virtualenv_and_paths_move_on_restore(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "data")
    _add_job(settings, "adder", "local", "2026-01-01T000000-abcd")
    _write_build(settings.data_dir, "adder", "2026-01-01T000000-abcd")
    archive = tmp_path / "b.tar.gz"
    manifest = backup(settings, archive)
    assert [(j.name, j.target, j.tag) for j in manifest.jobs] == [("adder", "local", "2026-01-01T000000-abcd")]
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert "data/builds/adder/1.0.0/2026-01-01T000000-abcd/artifact.json" in names
    assert "data/cache/venvs/k1/bin/python" in names  # the link, kept as a link

    moved = _settings(tmp_path / "elsewhere")
    restore(moved, archive)
    artifact = moved.data_dir / "builds" / "adder" / "1.0.0" / "2026-01-01T000000-abcd" / "artifact.json"
    command = json.loads(artifact.read_text())["command"]
    assert command[0] == str(moved.data_dir / "cache" / "venvs" / "k1" / "bin" / "python")
    assert Path(command[0]).is_symlink()
    assert (artifact.parent / "src" / "empty-but-needed").is_dir()  # empty directories are kept too


def test_a_backup_that_would_lack_a_running_jobs_build_is_refused_not_written(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "data")
    _add_job(settings, "adder", "local", "2026-01-01T000000-abcd")  # its build was removed meanwhile
    archive = tmp_path / "b.tar.gz"
    with pytest.raises(InvalidInput, match=f"{ATTEMPTS} attempts"):
        backup(settings, archive)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no archive, no temporary file


def test_jobs_on_container_targets_are_listed_with_their_images(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "data")
    image = "127.0.0.1:5000/trackside/job-entrypoint/adder:2026-01-01T000000-abcd"
    _add_job(settings, "adder", "docker", "2026-01-01T000000-abcd", image=image)
    manifest = backup(settings, tmp_path / "b.tar.gz")
    assert [(i.job_name, i.target, i.image) for i in manifest.images] == [("adder", "docker", image)]
