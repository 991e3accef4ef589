"""Conditional updates of pipeline rows, the scheduler's compare-and-set.

`set_where(Model)` is `UPDATE` without the ORM's session synchronisation: the callers update the
objects they hold themselves, and synchronising ("evaluate") walks every object loaded in the
session for each statement, which made a pass over 200 runs quadratic. They update them with
`mirror(obj, field=value)`, which sets the loaded values as the row's own: assigning the attributes
instead would mark the object changed and make the session write the same values again at commit
(one more UPDATE per step claimed, skipped or finished).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Update, update
from sqlalchemy.orm.attributes import set_committed_value


def set_where(model: Any) -> Update:
    return update(model).execution_options(synchronize_session=False)


def mirror(obj: Any, **values: Any) -> None:
    """What a `set_where` UPDATE just wrote, set on the loaded object without marking it changed."""
    for key, value in values.items():
        set_committed_value(obj, key, value)
