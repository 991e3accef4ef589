"""The supervisor copies what targets report into the store, but never over a newer deploy or move."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from tests.infra.local.localjob import LocalHarness, fake_job_command

from trackside.config import Settings
from trackside.domain import JobDto
from trackside.infra.local.monitor import LocalJobMonitor
from trackside.lifecycle import job_versions
from trackside.lifecycle.leases import Worker
from trackside.lifecycle.supervisor import Supervisor
from trackside.plugins.engine import PluginEngine
from trackside.store.database import Database
from trackside.store.models import Job

COLUMNS = (Job.id, Job.infrastructure_target, Job.image_tag)


def running_job(db: Database, target: str, tag: str, name: str = "mover") -> str:
    with db.session() as session:
        family = job_versions.get_or_create_family(session, name)
        job = Job(
            family_id=family.id,
            name=name,
            version="1.0.0",
            status="running",
            manifest=f"name: {name}\n",
            infrastructure_target=target,
            image_tag=tag,
            replica_internal_names=["127.0.0.1:1000"],
        )
        session.add(job)
        session.flush()
        return job.id


def test_a_report_read_before_a_move_is_not_written_over_the_move(db: Database) -> None:
    job_id = running_job(db, "local", "t1")
    with db.session() as session:
        before_move = session.execute(select(*COLUMNS).where(Job.id == job_id)).one()
    with db.session() as session:  # a move switches the job to docker meanwhile
        job_versions.update_job(
            session.get(Job, job_id),
            infrastructure_target="docker",
            image_tag="t2",
            replica_internal_names=["127.0.0.1:2000"],
        )

    with db.session() as session:
        written = Supervisor._write_if_unchanged(
            session, before_move, {"status": "running", "replica_internal_names": ["127.0.0.1:1000"]}
        )

    assert not written
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert (job.infrastructure_target, job.replica_internal_names) == ("docker", ["127.0.0.1:2000"])


def test_a_report_for_an_unchanged_job_is_written(db: Database) -> None:
    job_id = running_job(db, "local", "t1")
    with db.session() as session:
        row = session.execute(select(*COLUMNS).where(Job.id == job_id)).one()
        written = Supervisor._write_if_unchanged(session, row, {"status": "error", "error": "replica 0 exited"})

    assert written
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert (job.status, job.error) == ("error", "replica 0 exited")


def test_of_two_supervisors_on_one_store_one_acts_until_it_gives_the_lease_up(db: Database, tmp_path: Path) -> None:
    job_id = running_job(db, "local", "t1")  # the local target of this empty data dir reports nothing
    settings = Settings(data_dir=tmp_path / "data", docker_url="off", lease_duration=60)
    plugins = PluginEngine(settings, watch=False)
    try:
        first = Supervisor(settings, db, plugins, worker=Worker("here|boot|ns|1|1|first"))
        second = Supervisor(settings, db, plugins, worker=Worker("there|boot|ns|1|1|second"))
        assert second.tick() == {"lost": 1}  # it took the lease and acted: the job is not on its target
        assert first.tick() is None and first.tick() is None  # standing by: the other holds the lease
        with db.session() as session:
            session.get(Job, job_id).status = "running"  # type: ignore[union-attr]
        assert first.tick() is None
        with db.session() as session:
            assert session.get(Job, job_id).status == "running"  # type: ignore[union-attr]

        second.release()  # a clean stop gives the lease up: the other acts at its next pass
        assert first.tick() == {"lost": 1}
        assert second.tick() is None
    finally:
        plugins.close()


def test_the_last_call_a_target_reports_is_kept_and_only_moves_forward(db: Database) -> None:
    job_id = running_job(db, "local", "t1")
    columns = (*COLUMNS, Job.status, Job.internal_name, Job.last_call_time)
    report = JobDto(name="mover", version="1.0.0", status="running", last_call_time=1_700_000_000)

    with db.session() as session:
        row = session.execute(select(*columns).where(Job.id == job_id)).one()
        assert Supervisor._write_if_unchanged(session, row, Supervisor._desired(row, report))
    with db.session() as session:
        assert job_versions.timestamp(session.get(Job, job_id).last_call_time) == 1_700_000_000  # type: ignore[union-attr]

    # A replica restarted since (its counter back at zero, or an older call) doesn't take it back, and a
    # job called all the time is written once a minute.
    unchanged = (
        JobDto(name="mover", version="1.0.0", last_call_time=1_600_000_000),
        JobDto("mover", "1.0.0"),
        JobDto(name="mover", version="1.0.0", last_call_time=1_700_000_059),
    )
    with db.session() as session:
        row = session.execute(select(*columns).where(Job.id == job_id)).one()
    for report in unchanged:
        assert "last_call_time" not in Supervisor._desired(row, report)
    later = JobDto(name="mover", version="1.0.0", last_call_time=1_700_000_060)
    assert job_versions.timestamp(Supervisor._desired(row, later)["last_call_time"]) == 1_700_000_060


def test_a_job_whose_replicas_still_boot_keeps_its_status_until_their_boot_time_is_up(
    db: Database, tmp_path: Path
) -> None:
    """After a platform restart the supervisor meets replicas that have not answered yet: the job is
    not written `error` while they boot (it was, until the next pass), only once a deployment would
    have given up on them."""
    settings = Settings(data_dir=tmp_path / "data", docker_url="off", job_live_timeout=3600, job_ready_timeout=3600)
    harness = LocalHarness(settings)
    plugins = PluginEngine(settings, watch=False)
    try:
        target = plugins.infrastructure_targets()["local"]
        monitor = target.job_monitor
        assert isinstance(monitor, LocalJobMonitor)
        harness.artifact(command=fake_job_command("import time; time.sleep(3600)"))  # runs, never answers
        harness.deploy(target)  # the supervisor's own target starts it, as a platform restarting does
        job_id = running_job(db, "local", "t1", name="adder")
        supervisor = Supervisor(settings, db, plugins, worker=Worker("here|boot|ns|1|1|one"))

        def row() -> tuple[str, str | None]:
            with db.session() as session:
                job = session.get(Job, job_id)
                assert job is not None
                return job.status, job.error

        assert supervisor.tick() == {"running": 1}, monitor.list_jobs(settings)
        assert row() == ("running", None)

        monitor.live_timeout = 0.0  # the time a deployment waits for it to turn live is up
        assert supervisor.tick() == {"error": 1}, monitor.list_jobs(settings)
        status, error = row()
        assert status == "error" and "not answering" in (error or "")
    finally:
        plugins.close()
        harness.cleanup()
