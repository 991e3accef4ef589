"""Maintenance mode: a setting staff switch on and off; while on, changes are refused (503).

Refused: deploy, redeploy, delete, move (and other changes to jobs). Reads and job calls go on.
Stored as the `maintenance_mode` Setting row, Racetrack's name for it, so one switch covers every
lifecycle replica.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from trackside.auth.subjects import Caller
from trackside.errors import Unavailable
from trackside.lifecycle import audit
from trackside.lifecycle.access import require_staff
from trackside.lifecycle.audit import EventType
from trackside.store.database import Database
from trackside.store.models import Setting

SETTING_NAME = "maintenance_mode"


def is_on(session: Session) -> bool:
    row = session.get(Setting, SETTING_NAME)
    return bool(row is not None and row.enabled and (row.value or {}).get("value") is True)


def set_mode(session: Session, on: bool) -> bool:
    """Switch it; returns the previous state."""
    row = session.get(Setting, SETTING_NAME)
    before = bool(row is not None and row.enabled and (row.value or {}).get("value") is True)
    if row is None:
        session.add(Setting(name=SETTING_NAME, value={"value": on}, enabled=True))
    else:
        row.value = {"value": on}
        row.enabled = True
    return before


def mode(db: Database) -> bool:
    """Whether maintenance mode is on (anyone logged in may ask)."""
    with db.session() as session:
        return is_on(session)


def switch(db: Database, caller: Caller, on: bool) -> None:
    """Staff switch maintenance mode; a change of state is audited."""
    require_staff(caller)
    with db.session() as session:
        before = set_mode(session, on)
        if before != on:
            audit.record(session, EventType.SETTING_CHANGED, caller.username, setting=SETTING_NAME, value=on)


def refuse_changes(db: Database, action: str) -> None:
    with db.session() as session:
        if is_on(session):
            raise Unavailable(
                f"Trackside is in maintenance mode: {action} is disabled until staff switch maintenance off;"
                " reading jobs and calling them still work"
            )
