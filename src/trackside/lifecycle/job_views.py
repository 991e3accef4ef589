"""Views of all jobs for the dashboard: the jobs table (families, filtered, sorted, paged), the
portfolio (purge score, column filters, paged) and a cheap "has anything changed" stamp.

Built to stay fast with 10,000 jobs: light rows (no manifest) are kept per job, keyed by its
`update_time` as `JobListing` keeps JSON fragments, so a request reads three columns, refreshes the
rows that changed, filters by the caller's grants and returns one page.
"""

from __future__ import annotations

import bisect
import functools
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session

from trackside.auth.permissions import Resource
from trackside.auth.scopes import Scope
from trackside.auth.subjects import Caller
from trackside.errors import InvalidInput
from trackside.lifecycle import job_versions
from trackside.lifecycle.access import Grants
from trackside.lifecycle.purge import purge_verdict
from trackside.lifecycle.table_filter import Predicate, parse_filter
from trackside.manifest.versions import SemVer
from trackside.store.database import Database
from trackside.store.models import Job

_CHUNK = 500
# Sorting by status puts faulty jobs first.
STATUS_RANK = {"lost": 0, "error": 1, "orphaned": 2, "starting": 3, "running": 4}


@dataclass(frozen=True)
class JobRow:
    id: str
    family_id: str
    name: str
    version: str
    status: str
    create_time: int
    update_time: int
    last_call_time: int | None
    deployed_by: str | None
    owner_email: str | None
    job_type: str | None
    job_type_version: str | None
    infrastructure_target: str | None
    error: str | None
    replicas: int

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "status": self.status,
            "create_time": self.create_time,
            "update_time": self.update_time,
            "last_call_time": self.last_call_time,
            "deployed_by": self.deployed_by,
            "owner_email": self.owner_email,
            "job_type": self.job_type,
            "job_type_version": self.job_type_version,
            "infrastructure_target": self.infrastructure_target,
            "error": self.error,
            "replicas": self.replicas,
        }


def _row(job: Job) -> JobRow:
    manifest = job_versions.parse_stored_manifest(job.manifest) if job.manifest else None
    manifest = manifest or {}
    error = job.error
    return JobRow(
        id=job.id,
        family_id=job.family_id,
        name=job.name,
        version=job.version,
        status=job.status,
        create_time=job_versions.timestamp(job.create_time) or 0,
        update_time=job_versions.timestamp(job.update_time) or 0,
        last_call_time=job_versions.timestamp(job.last_call_time),
        deployed_by=job.deployed_by,
        owner_email=str(manifest.get("owner_email") or "") or None,
        job_type=str(manifest.get("jobtype") or "") or None,
        job_type_version=job.job_type_version,
        infrastructure_target=job.infrastructure_target,
        error=error[:300] if error else None,
        replicas=len(job.replica_internal_names or []),
    )


class JobIndex:
    """Light rows of every job, refreshed by `update_time` (one per database, shared by requests)."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[str, JobRow]] = {}
        self._lock = threading.Lock()

    def rows(self, session: Session, visible: Callable[[str, str], bool]) -> list[JobRow]:
        light = (
            session.connection()
            .execute(select(Job.id, Job.family_id, cast(Job.update_time, String)).order_by(Job.name, Job.create_time))
            .all()
        )
        with self._lock:
            known = dict(self._rows)
        wanted = [(job_id, updated) for job_id, family_id, updated in light if visible(family_id, job_id)]
        stale = {job_id: updated for job_id, updated in wanted if known.get(job_id, ("",))[0] != updated}
        ids = list(stale)
        for start in range(0, len(ids), _CHUNK):
            for job in session.scalars(select(Job).where(Job.id.in_(ids[start : start + _CHUNK]))):
                known[job.id] = (stale[job.id], _row(job))
        with self._lock:
            self._rows.update({job_id: known[job_id] for job_id in stale if job_id in known})
            if len(self._rows) > 2 * len(light) + 1000:
                present = {row[0] for row in light}
                self._rows = {k: v for k, v in self._rows.items() if k in present}
        return [known[job_id][1] for job_id, _ in wanted if job_id in known]


_indexes: weakref.WeakKeyDictionary[Database, JobIndex] = weakref.WeakKeyDictionary()
_indexes_lock = threading.Lock()


def job_index(db: Database) -> JobIndex:
    with _indexes_lock:
        index = _indexes.get(db)
        if index is None:
            index = _indexes[db] = JobIndex()
        return index


def stamp(db: Database) -> str:
    """Changes whenever a job is added, removed or updated (not a secret: counts and a time)."""
    with db.session() as session:
        count, latest = session.execute(select(func.count(Job.id), func.max(cast(Job.update_time, String)))).one()
    return f"{count}:{latest or ''}"


def _reads_everything(grants: Grants) -> bool:
    """Whether a grant lets the caller read every job (new users' default): then no row needs a check."""
    if grants.caller.is_internal:
        return grants.allows(Scope.READ_JOB, Resource())
    return any(
        g.scope in (Scope.READ_JOB.value, Scope.FULL_ACCESS.value)
        and g.family_id is None
        and g.job_id is None
        and g.endpoint is None
        for g in grants.grants
    )


def readable_rows(db: Database, caller: Caller) -> list[JobRow]:
    """The rows of the jobs the caller may read."""
    with db.session() as session:
        grants = Grants.of(session, caller)
        if _reads_everything(grants):
            return job_index(db).rows(session, lambda _family_id, _job_id: True)
        return job_index(db).rows(
            session, lambda family_id, job_id: grants.allows(Scope.READ_JOB, Resource(family_id, job_id))
        )


# -- the jobs table ---------------------------------------------------------------------------------

TABLE_FILTERS = ("name", "version", "owner", "job_type", "target", "status")
TABLE_SORTS = ("name", "deploy", "status")


@functools.lru_cache(maxsize=65_536)
def _version_key(version: str) -> tuple[int, Any]:
    try:
        return (1, SemVer.parse(version).sort_key)
    except ValueError:
        return (0, version)


def _table_field(row: JobRow, name: str) -> str:
    value = {
        "name": row.name,
        "version": row.version,
        "owner": f"{row.deployed_by or ''} {row.owner_email or ''}",
        "job_type": f"{row.job_type or ''} {row.job_type_version or ''}",
        "target": row.infrastructure_target or "",
        "status": row.status,
    }[name]
    return value.lower()


def jobs_table(rows: Iterable[JobRow], filters: dict[str, str], sort: str, offset: int, limit: int) -> dict[str, Any]:
    """Families (newest version first) of the rows passing every filter (case-insensitive substrings)."""
    if sort not in TABLE_SORTS:
        raise InvalidInput(f"sort: choose one of {', '.join(TABLE_SORTS)}, got {sort!r}")
    active = {k: v.strip().lower() for k, v in filters.items() if v and v.strip()}
    families: dict[str, list[JobRow]] = {}
    total = 0
    for row in rows:
        total += 1
        if all(needle in _table_field(row, field) for field, needle in active.items()):
            families.setdefault(row.name, []).append(row)
    for versions in families.values():
        versions.sort(key=lambda r: _version_key(r.version), reverse=True)
    names = list(families)
    if sort == "name":
        names.sort()
    elif sort == "deploy":
        names.sort(key=lambda n: max(r.update_time for r in families[n]), reverse=True)
    else:
        names.sort(key=lambda n: (min(STATUS_RANK.get(r.status, 5) for r in families[n]), n))
    page = names[offset : offset + limit]
    return {
        "total_jobs": total,
        "matched_jobs": sum(len(v) for v in families.values()),
        "matched_families": len(names),
        "offset": offset,
        "limit": limit,
        "families": [{"name": n, "jobs": [r.to_api() for r in families[n]]} for n in page],
    }


# -- the portfolio ----------------------------------------------------------------------------------

PORTFOLIO_COLUMNS = (
    "name",
    "version",
    "status",
    "purge_score",
    "purge_reasons",
    "deployed_by",
    "owner_email",
    "job_type",
    "infrastructure_target",
    "update_time_days_ago",
    "last_call_time_days_ago",
    "purge_newer_versions",
)


def _days_ago(moment: int | None, now: float) -> float | None:
    return None if moment is None else round((now - moment) / 86400, 1)


_portfolio_cache: dict[tuple[int, int], tuple[float, list[dict[str, Any]]]] = {}
_portfolio_lock = threading.Lock()
PORTFOLIO_CACHE_S = 5.0  # ages and scores move by the day: a few seconds of reuse changes nothing


def cached_portfolio_items(rows: list[JobRow]) -> list[dict[str, Any]]:
    """`portfolio_items`, reused for a few seconds while the same rows (ids and update times) come in."""
    key = (len(rows), hash(tuple((row.id, row.update_time, row.status) for row in rows)))
    now = time.monotonic()
    with _portfolio_lock:
        found = _portfolio_cache.get(key)
        if found is not None and now - found[0] < PORTFOLIO_CACHE_S:
            return found[1]
    items = portfolio_items(rows)
    with _portfolio_lock:
        for stale in [k for k, (at, _) in _portfolio_cache.items() if now - at >= PORTFOLIO_CACHE_S]:
            del _portfolio_cache[stale]
        _portfolio_cache[key] = (now, items)
    return items


def portfolio_items(rows: list[JobRow], now: float | None = None) -> list[dict[str, Any]]:
    """Every row with its purge score, reasons and ages, highest score first."""
    now = time.time() if now is None else now
    versions: dict[str, list[tuple[int, Any]]] = {}
    for row in rows:
        versions.setdefault(row.name, []).append(_version_key(row.version))
    for keys in versions.values():
        keys.sort()
    items = []
    for row in rows:
        family = versions[row.name]
        newer = len(family) - bisect.bisect_right(family, _version_key(row.version))
        verdict = purge_verdict(row.status, row.update_time, row.last_call_time, newer, now)
        items.append(
            {
                **row.to_api(),
                "purge_score": verdict.score,
                "purge_reasons": verdict.reasons,
                "purge_newer_versions": newer,
                "update_time_days_ago": _days_ago(row.update_time, now),
                "last_call_time_days_ago": _days_ago(row.last_call_time, now),
            }
        )
    items.sort(key=lambda item: (-item["purge_score"], item["name"], item["version"]))
    return items


def parse_column_filters(filters: dict[str, str]) -> dict[str, Predicate]:
    parsed = {}
    for column, expression in filters.items():
        if column not in PORTFOLIO_COLUMNS:
            raise InvalidInput(f"filter_{column}: unknown column; choose one of {', '.join(PORTFOLIO_COLUMNS)}")
        try:
            parsed[column] = parse_filter(expression)
        except InvalidInput as exc:
            raise InvalidInput(f"filter_{column}: {exc.message}") from None
    return parsed


def portfolio_page(
    items: list[dict[str, Any]], filters: dict[str, str], sort: str, offset: int, limit: int
) -> dict[str, Any]:
    predicates = parse_column_filters({k: v for k, v in filters.items() if v and v.strip()})
    column, descending = sort.lstrip("-"), sort.startswith("-")
    if column not in PORTFOLIO_COLUMNS:
        raise InvalidInput(f"sort: unknown column {column!r}; choose one of {', '.join(PORTFOLIO_COLUMNS)}")
    matched = [item for item in items if all(test(item[col]) for col, test in predicates.items())]
    if column != "purge_score" or not descending:
        present = [i for i in matched if i[column] is not None]
        missing = [i for i in matched if i[column] is None]

        def key(item: dict[str, Any]) -> Any:
            value = item[column]
            return (0, value, "") if isinstance(value, int | float) else (1, 0, str(value).lower())

        matched = sorted(present, key=key, reverse=descending) + missing
    return {
        "columns": list(PORTFOLIO_COLUMNS),
        "total": len(items),
        "matched": len(matched),
        "offset": offset,
        "limit": limit,
        "items": matched[offset : offset + limit],
    }
