"""Writers that wait (issue 11 point 6): a transaction that reads and then writes takes the write
lock up front, so a poll committing meanwhile cannot make it fail with "database is locked"; work
that finds the lock held past the busy timeout is retried whole as soon as it clears."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from mailbot.db.engine import make_engine, make_sessionmaker
from mailbot.db.write_retry import WRITE_LOCK_KEY, in_write_transaction, is_locked


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "db.sqlite3"
    engine = make_engine(f"sqlite:///{path}", busy_timeout=5)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE item (name TEXT)")
    yield path, engine
    engine.dispose()


def names(engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.exec_driver_sql("SELECT name FROM item").scalars())


def test_read_then_write_survives_a_commit_in_between(database):
    _, engine = database
    sessions = make_sessionmaker(engine)
    other_done = threading.Event()
    errors = []

    def poll_writes():
        try:
            with sessions.begin() as other:
                other.execute(text("INSERT INTO item VALUES ('poll')"))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        other_done.set()

    def stage(remind):
        # As queue_reminders does: a savepoint per reminder, in which the outbox key is looked up
        # and then the row written. Deferred, the read fixed a snapshot that the poll's commit
        # made stale, and the write failed at once with "database is locked".
        with remind.begin_nested():
            remind.execute(text("SELECT count(*) FROM item")).scalar()
            writer = threading.Thread(target=poll_writes)
            writer.start()
            other_done.wait(1.0)  # deferred: the poll commits now; immediate: it waits for us
            remind.execute(text("INSERT INTO item VALUES ('reminder')"))
        return writer

    writer = in_write_transaction(sessions, stage, within=0)
    writer.join(10)
    assert not errors
    assert names(engine) == ["poll", "reminder"]


def test_work_is_retried_whole_once_the_lock_clears(tmp_path):
    path = tmp_path / "db.sqlite3"
    engine = make_engine(f"sqlite:///{path}", busy_timeout=0.05)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE item (name TEXT)")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a poll holding the lock longer than the busy timeout
    attempts = []

    def stage(session):
        attempts.append(1)
        for school in ("a", "b", "c"):
            session.execute(text("INSERT INTO item VALUES (:n)"), {"n": school})
        return "queued"

    waits = []

    def sleep(_seconds):
        waits.append(1)
        if len(waits) == 2:
            holder.commit()  # the poll finishes while the stage waits

    result = in_write_transaction(make_sessionmaker(engine), stage, pause=0.2, sleep=sleep)  # 2 steps of 0.1 s
    holder.close()
    assert result == "queued" and len(waits) == 2
    assert names(engine) == ["a", "b", "c"]  # whole, once
    engine.dispose()


def test_a_lock_that_never_clears_gives_up_with_nothing_written(tmp_path):
    path = tmp_path / "db.sqlite3"
    engine = make_engine(f"sqlite:///{path}", busy_timeout=0.05)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE item (name TEXT)")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    now = [0.0]

    def sleep(seconds):
        now[0] += 60

    with pytest.raises(OperationalError, match="locked"):
        in_write_transaction(make_sessionmaker(engine), lambda s: s.execute(text("INSERT INTO item VALUES ('x')")),
                             within=300, clock=lambda: now[0], sleep=sleep)
    holder.rollback()
    holder.close()
    assert names(engine) == []
    engine.dispose()


def test_a_stop_cuts_the_pause_between_tries_short(tmp_path):
    """Every lock a bound, and a stop honoured within seconds: the pause before the next try (up to
    10 s) ends as soon as the stop is asked, and nothing is written. It used to be one sleep of its
    whole length, the stop looked at only after it."""
    path = tmp_path / "db.sqlite3"
    engine = make_engine(f"sqlite:///{path}", busy_timeout=0.05)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE item (name TEXT)")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a poll holding the lock
    asked: list[float] = []

    def sleep(seconds):
        asked.append(seconds)

    with pytest.raises(OperationalError, match="locked"):
        in_write_transaction(make_sessionmaker(engine), lambda s: s.execute(text("INSERT INTO item VALUES ('x')")),
                             pause=10.0, should_stop=lambda: len(asked) >= 3, sleep=sleep)
    holder.rollback()
    holder.close()
    assert sum(asked) == pytest.approx(0.3)  # three steps of the first 10 s pause, then the stop
    assert names(engine) == []
    engine.dispose()


def test_postgresql_waits_for_a_held_lock_within_the_busy_timeout_then_retries_whole(postgres):
    """Every lock a bound: an advisory lock another instance holds (or a row it locked) is waited
    for `busy_timeout` at most (lock_timeout, SQLSTATE 55P03), and the work is retried whole; a
    lock that never clears gives up with nothing written, instead of waiting for ever."""
    url, password = postgres.url(postgres.new_database("lock_timeout", template="template0")), postgres.password_file.read_text().strip()
    engine, holder_engine = make_engine(url, password, busy_timeout=0.2), make_engine(url, password)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE item (name TEXT)")
    holder = holder_engine.connect()
    holder.execute(text(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})"))  # another instance's work
    attempts = []

    def stage(session):
        attempts.append(1)
        session.execute(text("INSERT INTO item VALUES ('reminder')"))

    with pytest.raises(OperationalError) as raised:
        in_write_transaction(make_sessionmaker(engine), stage, within=0)
    assert is_locked(raised.value) and raised.value.orig.sqlstate == "55P03" and attempts == []

    def sleep(_seconds):
        holder.rollback()  # the other instance's transaction ends while this one waits

    in_write_transaction(make_sessionmaker(engine), stage, pause=0.1, sleep=sleep)
    assert names(engine) == ["reminder"] and attempts == [1]
    holder.close()
    engine.dispose()
    holder_engine.dispose()


def test_postgresql_work_whose_connection_drops_is_retried_whole_on_a_new_one(postgres):
    """A sent email's record (or a reminder stage) must survive a moment's outage: the server
    ends the connection under the work (as at a restart), and the work is done again, whole, on a
    new connection. It used to be raised: a sent email stayed `sending` and went out again later."""
    url, password = postgres.url(postgres.new_database("dropped", template="template0")), postgres.password_file.read_text().strip()
    engine = make_engine(url, password)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE item (name TEXT)")
    backends = []

    def record(session):
        backends.append(session.scalar(text("SELECT pg_backend_pid()")))
        session.execute(text("INSERT INTO item VALUES ('sent')"))
        if len(backends) == 1:
            session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))  # the server goes away

    in_write_transaction(make_sessionmaker(engine), record, pause=0.1, sleep=lambda _s: None)
    assert len(backends) == 2 and backends[0] != backends[1]
    assert names(engine) == ["sent"]  # the first try's insert died with its connection
    engine.dispose()
