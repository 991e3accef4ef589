"""Listing jobs fast: `GET /job` with 10,000 jobs answers in under 200 ms (a median of 175 ms in
docs/benchmarks.md, "Control plane at scale", on a loaded 2-core machine).

Each job's JSON is kept, keyed by the job's id and `update_time` (which every change to the row
moves). A listing reads only light columns, filters them by the caller's grants, and loads full
rows just for jobs that changed since they were last serialised; the response is the kept
fragments joined. Rows go straight to JSON, without ORM objects or a generic encoder.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable

from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from trackside.lifecycle import job_versions
from trackside.store.database import Database
from trackside.store.models import Job

_CHUNK = 500  # ids per `IN (...)` query when loading changed rows


class JobListing:
    def __init__(self, pub_url_base: str) -> None:
        self.pub_url_base = pub_url_base
        self._fragments: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def warm_up(self, db: Database) -> None:
        """Serialise every job once, so the first `GET /job` after a start (seconds with 10,000 jobs
        otherwise) is as fast as the ones after it."""
        with db.session() as session:
            self.json(session, lambda _family_id, _job_id: True)

    def json(self, session: Session, visible: Callable[[str, str], bool]) -> str:
        """The JSON array of the jobs for which `visible(family_id, job_id)` holds, in list order."""
        # Core rows, and update_time as the stored text: no ORM or datetime parsing per row.
        light = (
            session.connection()
            .execute(select(Job.id, Job.family_id, cast(Job.update_time, String)).order_by(Job.name, Job.create_time))
            .all()
        )
        wanted = [(job_id, updated) for job_id, family_id, updated in light if visible(family_id, job_id)]
        with self._lock:
            fragments = dict(self._fragments)
        stale = {job_id: updated for job_id, updated in wanted if fragments.get(job_id, (None,))[0] != updated}
        for job in self._load(session, list(stale)):
            fragment = json.dumps(job_versions.job_to_dto(job, self.pub_url_base).to_api(), separators=(",", ":"))
            # Keyed by the update_time read above: a row changed meanwhile is refreshed next time.
            fragments[job.id] = (stale[job.id], fragment)
        with self._lock:
            if stale:
                self._fragments.update({job_id: fragments[job_id] for job_id in stale if job_id in fragments})
            if len(self._fragments) > 2 * len(light) + 1000:  # forget deleted jobs now and then
                present = {row[0] for row in light}
                self._fragments = {k: v for k, v in self._fragments.items() if k in present}
        return "[" + ",".join(fragments[job_id][1] for job_id, _ in wanted if job_id in fragments) + "]"

    @staticmethod
    def _load(session: Session, ids: list[str]) -> Iterable[Job]:
        for start in range(0, len(ids), _CHUNK):
            yield from session.scalars(select(Job).where(Job.id.in_(ids[start : start + _CHUNK])))
