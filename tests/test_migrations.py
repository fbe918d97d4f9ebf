"""The migrations build the schema the models describe, from an empty database."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from mailbot.db.engine import make_engine
from mailbot.db.migrate import HEAD, current_revision, head_revision, stored_revision, upgrade
from mailbot.db.models import Base


def test_empty_database_to_head_matches_models(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    upgrade(engine)
    assert current_revision(engine) == head_revision(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    assert {"messages", "submissions", "outbox", "quarantine", "known_senders"} <= set(inspect(engine).get_table_names())


def test_head_constant_is_the_newest_migration(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert stored_revision(engine) is None
    assert head_revision(engine) == HEAD


def test_upgrade_twice_is_harmless(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision(engine)
