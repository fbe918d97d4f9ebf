"""The migrations build the schema the models describe, from an empty database."""

from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from mailbot.db.engine import make_engine
from mailbot.db.migrate import HEAD, current_revision, head_revision, stored_revision, upgrade
from mailbot.db.models import Base


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request, tmp_path):
    """An empty database on each backend (PostgreSQL: a new one on the session's server)."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    else:
        server = request.getfixturevalue("postgres")
        name = server.new_database(f"empty_{request.node.name}".replace("[", "_").replace("]", "").lower(),
                                   template="template0")
        engine = make_engine(server.url(name), server.password_file.read_text().strip())
    yield engine
    engine.dispose()


def test_empty_database_to_head_matches_models(empty_engine):
    engine = empty_engine
    upgrade(engine)
    assert current_revision(engine) == head_revision(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    assert {"messages", "submissions", "outbox", "quarantine", "known_senders"} <= set(inspect(engine).get_table_names())


def test_the_poll_retry_index_is_partial_on_both_backends(empty_engine):
    # The model names the SQLite predicate only (mailbot.db.models); 0010 makes it on both.
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        if empty_engine.dialect.name == "sqlite":
            sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'ix_messages_unsettled'").scalar()
        else:
            sql = conn.exec_driver_sql("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_messages_unsettled'").scalar()
    assert "WHERE" in sql and "outcome IS NULL" in sql and "'failed'" in sql, sql


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


def test_types_that_differ_map_properly(empty_engine):
    """Aware times come back as the same instant in UTC, JSON as the same structure, bytes as bytes
    (PostgreSQL: timestamp with time zone, json, bytea); a UIDVALIDITY above 2**31 fits."""
    from mailbot.db.models import MailboxState, Outbox
    upgrade(empty_engine)
    shanghai = timezone(timedelta(hours=8))
    at = datetime(2022, 10, 24, 23, 59, 30, 123456, tzinfo=shanghai)
    raw = bytes(range(256)) * 10
    with Session(empty_engine) as session:
        session.add(Outbox(key="k", kind="receipt", mailbox="zjg", from_addr="a@b", recipient="c@d",
                           to_addrs=["c@d", "甲@例子.中国"], subject="回执", message_id="m", raw=raw,
                           next_attempt_at=at, created_at=at))
        session.add(MailboxState(mailbox="zjg", folder="INBOX", uidvalidity=4_294_967_295, last_uid=4_294_967_290,
                                 created_at=at))
        session.commit()
    with Session(empty_engine) as session:
        row = session.scalar(select(Outbox))
        state = session.scalar(select(MailboxState))
    assert row.created_at == at and row.created_at.tzinfo == timezone.utc
    assert row.to_addrs == ["c@d", "甲@例子.中国"] and row.raw == raw
    assert (state.uidvalidity, state.last_uid) == (4_294_967_295, 4_294_967_290)


def test_a_sqlite_commit_is_on_disk_when_it_returns(tmp_path):
    # WAL for readers beside the daemon; FULL, not NORMAL: with NORMAL an OS crash or power cut can
    # lose commits whose effects already happened (a receipt sent, a message moved away).
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    engine.dispose()
