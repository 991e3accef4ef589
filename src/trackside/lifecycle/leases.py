"""Who does what when several lifecycle or supervisor processes share one store: workers and leases.

Every process is a `Worker` with an id that says where it runs (host, boot, pid namespace, pid and the
pid's start time). What a worker does alone it holds under a lease in the store that it renews while it
lives: a deployment it runs (`Deployment.owner` / `lease_expires_at`) or a role such as the supervisor's
(a `Lease` row). Another worker takes over only a lease that expired, or one whose owner it can see is
gone: a process on the same machine (same boot, same pid namespace) whose pid no longer runs the
recorded process. Every take-over is a compare-and-set in one UPDATE, so of two workers trying at
once exactly one wins, on PostgreSQL as on SQLite.
"""

from __future__ import annotations

import functools
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from trackside.domain import DeploymentStatus
from trackside.store.base import utcnow
from trackside.store.database import Database
from trackside.store.models import Deployment, Lease

_SEPARATOR = "|"


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def process_start(pid: int) -> str:
    """The start time of process `pid` (clock ticks since boot), or "" when no such process runs."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


@dataclass(frozen=True)
class Worker:
    """One lifecycle or supervisor process, as named in the store."""

    id: str

    @property
    def host(self) -> str:
        return self.id.split(_SEPARATOR)[0]

    def is_gone(self) -> bool:
        """True when this worker is known to have stopped: it ran on this machine and its process is gone.

        A worker elsewhere (another host, boot or pid namespace) can't be seen from here: only the
        expiry of its leases says it stopped."""
        parts = self.id.split(_SEPARATOR)
        if len(parts) != 6:
            return False
        host, boot, namespace, pid, started, _ = parts
        here = current_worker().id.split(_SEPARATOR)
        if (host, boot, namespace) != tuple(here[:3]) or not boot or not namespace or not pid.isdigit():
            return False
        return process_start(int(pid)) != started


@functools.cache
def current_worker() -> Worker:
    """This process's worker id (the random part tells apart two runs that got the same pid)."""
    pid = os.getpid()
    parts = (
        socket.gethostname(),
        _read("/proc/sys/kernel/random/boot_id"),
        _pid_namespace(),
        str(pid),
        process_start(pid),
        secrets.token_hex(4),
    )
    return Worker(_SEPARATOR.join(part.replace(_SEPARATOR, "_") for part in parts))


def expiry(duration: float) -> datetime:
    return utcnow() + timedelta(seconds=duration)


def _expired(value: datetime | None) -> bool:
    if value is None:
        return True
    now = utcnow()
    if value.tzinfo is None:  # SQLite hands back naive datetimes; they were stored as UTC
        now = now.replace(tzinfo=None)
    return value < now


# -- deployments ---------------------------------------------------------------------------------------


def renew_deployments(db: Database, ids: list[str], worker: Worker, duration: float) -> set[str]:
    """Extend this worker's leases on deployments `ids`; the ids it no longer holds (taken over or ended)."""
    if not ids:
        return set()
    with db.session() as session:
        session.execute(
            update(Deployment)
            .where(
                Deployment.id.in_(ids),
                Deployment.owner == worker.id,
                Deployment.status == DeploymentStatus.IN_PROGRESS.value,
            )
            .values(lease_expires_at=expiry(duration))
        )
        held = set(
            session.scalars(
                select(Deployment.id).where(
                    Deployment.id.in_(ids),
                    Deployment.owner == worker.id,
                    Deployment.status == DeploymentStatus.IN_PROGRESS.value,
                )
            )
        )
    return set(ids) - held


def abandoned_deployments(db: Database, worker: Worker, name: str | None = None) -> list[Deployment]:
    """Deployments in progress that no live worker holds: lease expired, owner gone, or never owned."""
    query = select(Deployment).where(Deployment.status == DeploymentStatus.IN_PROGRESS.value)
    if name is not None:
        query = query.where(Deployment.job_name == name)
    with db.session() as session:
        rows = list(session.scalars(query))
    return [
        row
        for row in rows
        if row.owner != worker.id
        and (row.owner is None or _expired(row.lease_expires_at) or Worker(row.owner).is_gone())
    ]


def take_over_deployment(db: Database, deployment: Deployment, worker: Worker, duration: float) -> bool:
    """Become the owner of an abandoned deployment, unless another worker did first (or it ended).

    The UPDATE checks again what made it abandoned: the same owner (none, or one seen gone), or a lease
    still expired at that moment, so an owner that renewed meanwhile keeps it."""
    owner = deployment.owner
    condition = [Deployment.id == deployment.id, Deployment.status == DeploymentStatus.IN_PROGRESS.value]
    if owner is None:
        condition.append(Deployment.owner.is_(None))
    else:
        condition.append(Deployment.owner == owner)
        if not Worker(owner).is_gone():
            condition.append(Deployment.lease_expires_at < utcnow())
    with db.session() as session:
        result = session.execute(
            update(Deployment).where(*condition).values(owner=worker.id, lease_expires_at=expiry(duration))
        )
        return bool(getattr(result, "rowcount", 0))


# -- roles held by one worker at a time ----------------------------------------------------------------


def acquire(db: Database, name: str, worker: Worker, duration: float) -> bool:
    """Hold (or keep holding) role `name` for `duration` seconds; False while another worker holds it."""
    until = expiry(duration)
    with db.session() as session:
        lease = session.get(Lease, name)
        if lease is None:
            session.add(Lease(name=name, owner=worker.id, expires_at=until))
            try:
                session.flush()
            except IntegrityError:  # another worker created it meanwhile: theirs
                session.rollback()
                return False
            return True
        condition = [Lease.name == name, Lease.owner == lease.owner]
        if lease.owner != worker.id:
            if Worker(lease.owner).is_gone():
                pass  # its owner can't renew it any more
            elif _expired(lease.expires_at):
                condition.append(Lease.expires_at < utcnow())  # still expired when we write
            else:
                return False
        result = session.execute(
            update(Lease)
            .where(*condition)
            .values(owner=worker.id, expires_at=until)
            .execution_options(synchronize_session=False)  # the row loaded above is not used again
        )
        return bool(getattr(result, "rowcount", 0))


def release(db: Database, name: str, worker: Worker) -> None:
    """Give role `name` up at once (a clean stop), so another worker takes it without waiting."""
    with db.session() as session:
        session.execute(delete(Lease).where(Lease.name == name, Lease.owner == worker.id))


def holder(db: Database, name: str) -> str | None:
    """The worker holding role `name`, if its lease has not expired."""
    with db.session() as session:
        lease = session.get(Lease, name)
        return lease.owner if lease is not None and not _expired(lease.expires_at) else None
