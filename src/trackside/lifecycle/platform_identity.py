"""The platform's identity in the store: generated once, the same for every process on the store.

See `trackside.identity` for what it is for. On a store's first start the data dir's id is adopted
when there is one (targets made before used it), so what already runs keeps being this platform's.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.exc import IntegrityError

from trackside.identity import data_dir_platform_id
from trackside.store.database import Database
from trackside.store.models import Setting

SETTING_NAME = "platform_id"


def stored_platform_id(db: Database) -> str | None:
    with db.session() as session:
        row = session.get(Setting, SETTING_NAME)
        value = row.value.get("value") if row is not None else None
        return str(value) if value else None


def ensure_platform_id(db: Database, data_dir: Path) -> str:
    """The store's platform id, created on the store's first start."""
    found = stored_platform_id(db)
    if found is not None:
        return found
    try:
        with db.session() as session:
            session.add(Setting(name=SETTING_NAME, value={"value": data_dir_platform_id(data_dir)}, enabled=True))
    except IntegrityError:  # another process on the store was first: theirs
        pass
    found = stored_platform_id(db)
    assert found is not None
    return found
