"""Migration 0004_pipelines: the tables, and `run_pipeline` for users created before it."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, select

from trackside.auth.permissions import add_grant, load_grants
from trackside.auth.scopes import Scope
from trackside.auth.subjects import subject_of
from trackside.store.auth_models import User
from trackside.store.database import MIGRATIONS_DIR, Database


def upgrade(db: Database, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_users_with_the_old_defaults_get_run_pipeline_and_others_do_not(database_url: str) -> None:
    db = Database(database_url)
    try:
        upgrade(db, "0002")
        with db.session() as session:
            old, narrowed = User(username="old@example.com"), User(username="narrow@example.com")
            session.add_all([old, narrowed])
            session.flush()
            for scope in (Scope.READ_JOB, Scope.CALL_JOB, Scope.DEPLOY_NEW_FAMILY, Scope.DEPLOY_JOB):
                add_grant(session, subject_of(session, user_id=old.id).id, scope)
            add_grant(session, subject_of(session, user_id=narrowed.id).id, Scope.READ_JOB)
        upgrade(db, "head")
        assert {"pipeline_run", "pipeline_step", "pipeline_event", "pipeline_schedule"} <= set(
            inspect(db.engine).get_table_names()
        )
        with db.session() as session:
            users = {u.username: u for u in session.scalars(select(User))}
            old_scopes = {
                g.scope for g in load_grants(session, subject_of(session, user_id=users["old@example.com"].id).id)
            }
            narrow_scopes = {
                g.scope for g in load_grants(session, subject_of(session, user_id=users["narrow@example.com"].id).id)
            }
        assert "run_pipeline" in old_scopes
        assert "run_pipeline" not in narrow_scopes
    finally:
        db.dispose()
