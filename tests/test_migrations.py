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



def test_make_engine_creates_nothing_and_prepare_database_is_the_first_use_path(tmp_path, caplog):
    from mailbot.config import config_from_dict
    from mailbot.db.migrate import prepare_database

    def config_in(folder):
        return config_from_dict({"mailbox": [{"name": "zjg", "address": "zjg@163.com", "levels": ["middle"],
                                              "maildir": "mail", "outbox_dir": "out"}]}, folder)

    new = config_in(tmp_path / "new")
    make_engine(new.database_url).dispose()
    assert not new.state_dir.exists()
    caplog.set_level("INFO", logger="mailbot.db.migrate")
    engine = prepare_database(new)
    assert stored_revision(engine) == HEAD and "creating the database schema" in caplog.text
    engine.dispose()

    old = config_in(tmp_path / "old")  # a database left by an older version
    old.state_dir.mkdir(parents=True)
    engine = make_engine(old.database_url)
    upgrade(engine, "0002")
    caplog.clear()
    prepare_database(old).dispose()
    assert stored_revision(engine) == HEAD and "upgrading the database schema from revision 0002" in caplog.text
    engine.dispose()
