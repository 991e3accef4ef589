from __future__ import annotations

from sqlalchemy import inspect, text

from trackside.store.database import Database, normalize_url
from trackside.store.models import JobFamily


def test_migrations_create_every_table_on_a_fresh_database(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    tables = set(inspect(db.engine).get_table_names())
    assert {"job", "job_family", "deployment", "trash_job", "setting", "alembic_version"} <= tables
    db.dispose()


def test_migrating_twice_is_a_no_op_and_keeps_data(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    with db.session() as session:
        session.add(JobFamily(name="adder"))
    db.migrate()
    with db.session() as session:
        assert session.execute(text("SELECT name FROM job_family")).scalar_one() == "adder"
    db.dispose()


def test_session_rolls_back_when_the_block_raises(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    try:
        with db.session() as session:
            session.add(JobFamily(name="half-made"))
            session.flush()
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with db.session() as session:
        assert session.execute(text("SELECT count(*) FROM job_family")).scalar_one() == 0
    db.dispose()


def test_postgres_urls_get_the_psycopg3_driver() -> None:
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"


def test_postgres_migrations_run_even_when_the_suite_uses_sqlite(postgres_url: str) -> None:
    db = Database(postgres_url)
    db.migrate()
    assert "job" in inspect(db.engine).get_table_names()
    assert db.is_connected()
    db.dispose()
