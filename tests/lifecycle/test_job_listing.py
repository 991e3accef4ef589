"""The kept per-job JSON of `GET /job` never serves a stale job."""

from __future__ import annotations

import json

from sqlalchemy import select

from trackside.lifecycle import job_versions
from trackside.lifecycle.job_listing import JobListing
from trackside.store.database import Database
from trackside.store.models import Job


def add_job(db: Database, name: str, version: str) -> str:
    with db.session() as session:
        family = job_versions.get_or_create_family(session, name)
        job = Job(
            family_id=family.id,
            name=name,
            version=version,
            status="running",
            manifest=f"name: {name}\nversion: {version}\n",
        )
        session.add(job)
        session.flush()
        return job.id


def listed(db: Database, listing: JobListing, visible: object = None) -> list[dict]:
    with db.session() as session:
        return json.loads(listing.json(session, visible or (lambda _family, _job: True)))  # type: ignore[arg-type]


def test_a_changed_or_deleted_job_is_listed_as_it_is_now(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    listing = JobListing("http://gw/pub")
    add_job(db, "alpha", "1.0.0")
    beta = add_job(db, "beta", "1.0.0")
    first = listed(db, listing)
    assert [(j["name"], j["status"]) for j in first] == [("alpha", "running"), ("beta", "running")]
    assert first[1]["pub_url"] == "http://gw/pub/job/beta/1.0.0"
    assert first[1]["manifest"] == {"name": "beta", "version": "1.0.0"}

    with db.session() as session:
        job = session.get(Job, beta)
        assert job is not None
        job_versions.update_job(job, status="error", error="boom")
    assert [(j["name"], j["status"], j["error"]) for j in listed(db, listing)] == [
        ("alpha", "running", None),
        ("beta", "error", "boom"),
    ]

    with db.session() as session:
        job_versions.move_to_trash(session, job_versions.get_job(session, "alpha", "1.0.0"), "tester")
    assert [j["name"] for j in listed(db, listing)] == ["beta"]
    db.dispose()


def test_only_jobs_the_caller_may_see_are_listed(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    listing = JobListing("http://gw/pub")
    add_job(db, "alpha", "1.0.0")
    hidden = add_job(db, "beta", "1.0.0")
    assert [j["name"] for j in listed(db, listing, lambda _f, job_id: job_id != hidden)] == ["alpha"]
    db.dispose()


def test_a_warmed_up_listing_serves_every_job_and_still_sees_later_changes(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    listing = JobListing("http://gw/pub")
    alpha = add_job(db, "alpha", "1.0.0")
    add_job(db, "beta", "1.0.0")

    listing.warm_up(db)

    assert set(listing._fragments) == {job.id for job in _all_jobs(db)}
    with db.session() as session:
        job = session.get(Job, alpha)
        assert job is not None
        job_versions.update_job(job, status="error", error="boom")
    assert [(j["name"], j["status"]) for j in listed(db, listing)] == [("alpha", "error"), ("beta", "running")]
    db.dispose()


def _all_jobs(db: Database) -> list[Job]:
    with db.session() as session:
        return list(session.scalars(select(Job)))
