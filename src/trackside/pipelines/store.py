"""Conditional updates of pipeline rows, the scheduler's compare-and-set.

`set_where(Model)` is `UPDATE` without the ORM's session synchronisation: the callers update the
objects they hold themselves, and synchronising ("evaluate") walks every object loaded in the
session for each statement, which made a pass over 200 runs quadratic.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Update, update


def set_where(model: Any) -> Update:
    return update(model).execution_options(synchronize_session=False)
