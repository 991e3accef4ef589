"""Conditional updates of pipeline rows through a session, the compare-and-set of the pipelines'
slower paths (cron, notification deliveries, leases); the scheduler's per-step path is `state.py`.

`set_where(Model)` is `UPDATE` without the ORM's session synchronisation: the callers update the
objects they hold themselves, and synchronising ("evaluate") walks every object loaded in the
session for each statement, which made a pass over 200 runs quadratic.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Update, update


def set_where(model: Any) -> Update:
    return update(model).execution_options(synchronize_session=False)
