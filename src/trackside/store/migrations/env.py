"""Alembic environment: runs on the connection `Database.migrate` hands over."""

from alembic import context

# The store's table modules, so that Base.metadata describes their tables.
from trackside.store import auth_models as _auth_tables  # noqa: F401
from trackside.store import call_models as _call_tables  # noqa: F401
from trackside.store import models as _job_tables  # noqa: F401
from trackside.store.base import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
