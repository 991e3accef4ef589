"""Leases in the store: a worker takes over what another holds only once its lease expired or it is gone."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta

from sqlalchemy import update

from trackside.lifecycle import leases
from trackside.lifecycle.leases import Worker, current_worker, process_start
from trackside.store.base import utcnow
from trackside.store.database import Database
from trackside.store.models import Deployment, Lease

# A worker on another machine: nothing here can tell whether it still runs, only its lease can.
ELSEWHERE = Worker("other-host|boot-of-another-machine|pid:[1]|4242|123456|cafe0001")


def a_deployment(db: Database, owner: Worker | None, expires_in: float, version: str = "1.0.0") -> Deployment:
    with db.session() as session:
        deployment = Deployment(
            manifest="name: leased\n",
            job_name="leased",
            job_version=version,
            owner=owner.id if owner else None,
            lease_expires_at=utcnow() + timedelta(seconds=expires_in),
        )
        session.add(deployment)
        session.flush()
        return deployment


def owner_of(db: Database, deployment_id: str) -> str | None:
    with db.session() as session:
        deployment = session.get(Deployment, deployment_id)
        assert deployment is not None
        return deployment.owner


def test_a_deployment_held_elsewhere_is_taken_over_only_once_its_lease_expired(db: Database) -> None:
    me = current_worker()
    deployment = a_deployment(db, ELSEWHERE, expires_in=60)
    assert leases.abandoned_deployments(db, me) == []
    assert not leases.take_over_deployment(db, deployment, me, 10)  # alive as far as we can tell

    with db.session() as session:
        session.execute(
            update(Deployment)
            .where(Deployment.id == deployment.id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    (abandoned,) = leases.abandoned_deployments(db, me)
    assert abandoned.id == deployment.id
    assert leases.take_over_deployment(db, abandoned, me, 10)
    assert owner_of(db, deployment.id) == me.id
    assert not leases.take_over_deployment(db, abandoned, Worker(ELSEWHERE.id + "x"), 10)  # one winner
    assert leases.abandoned_deployments(db, me) == []  # ours now


def test_a_renewed_lease_is_not_taken_over(db: Database) -> None:
    me = current_worker()
    deployment = a_deployment(db, ELSEWHERE, expires_in=-1)
    (seen,) = leases.abandoned_deployments(db, me)
    # Its owner renews between our look and our take-over: the take-over must not win.
    assert leases.renew_deployments(db, [deployment.id], ELSEWHERE, 60) == set()
    assert not leases.take_over_deployment(db, seen, me, 10)
    assert owner_of(db, deployment.id) == ELSEWHERE.id
    # Renewing what one does not hold says so.
    assert leases.renew_deployments(db, [deployment.id], me, 60) == {deployment.id}


def test_a_stopped_worker_on_this_machine_is_seen_gone_before_its_lease_expires(db: Database) -> None:
    child = subprocess.run(
        [sys.executable, "-c", "from trackside.lifecycle.leases import current_worker; print(current_worker().id)"],
        capture_output=True,
        text=True,
        check=True,
    )
    stopped = Worker(child.stdout.strip())
    assert stopped.host == current_worker().host and stopped.is_gone()
    assert not current_worker().is_gone() and not ELSEWHERE.is_gone()
    deployment = a_deployment(db, stopped, expires_in=60)
    (abandoned,) = leases.abandoned_deployments(db, current_worker())
    assert abandoned.id == deployment.id
    assert leases.take_over_deployment(db, abandoned, current_worker(), 10)


def test_a_process_start_time_tells_a_reused_pid_from_its_first_process() -> None:
    assert process_start(1) != "" and process_start(1) == process_start(1)
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as process:
        try:
            started = process_start(process.pid)
            assert started and started != process_start(1)
        finally:
            process.kill()
    assert process_start(process.pid) == ""


def test_one_holder_of_a_role_at_a_time_until_it_expires_or_is_given_up(db: Database) -> None:
    me = current_worker()
    assert leases.acquire(db, "supervisor", ELSEWHERE, 60)
    assert not leases.acquire(db, "supervisor", me, 60)
    assert leases.holder(db, "supervisor") == ELSEWHERE.id
    assert leases.acquire(db, "supervisor", ELSEWHERE, 60)  # renewing one's own

    with db.session() as session:
        session.execute(update(Lease).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert leases.holder(db, "supervisor") is None
    assert leases.acquire(db, "supervisor", me, 0.5)
    assert not leases.acquire(db, "supervisor", ELSEWHERE, 60)

    leases.release(db, "supervisor", ELSEWHERE)  # not its lease any more: nothing happens
    assert leases.holder(db, "supervisor") == me.id
    leases.release(db, "supervisor", me)
    assert leases.acquire(db, "supervisor", ELSEWHERE, 60)  # at once after a clean stop


def test_an_expired_lease_goes_by_the_clock_not_by_a_sleep(db: Database) -> None:
    me = current_worker()
    assert leases.acquire(db, "pipelines", me, 0.2)
    deadline = time.monotonic() + 10
    while not leases.acquire(db, "pipelines", ELSEWHERE, 60):
        assert time.monotonic() < deadline, "a 0.2 s lease never expired"
        time.sleep(0.05)
    assert leases.holder(db, "pipelines") == ELSEWHERE.id
