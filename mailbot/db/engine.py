"""Engines and sessions. Nothing connects at import time, and nothing here creates a file, a folder
or a table: the state directory and the schema are made in mailbot.db.migrate.prepare_database.

pysqlite begins a (deferred) transaction only before a write, so plain reads never lock anything.
Work that reads and then writes inside one transaction, with savepoints, must take the write lock
up front (`BEGIN IMMEDIATE`): in WAL mode a deferred transaction that has read fails at once with
"database is locked" when another process wrote meanwhile (issue 11). That is
`mailbot.db.write_retry.in_write_transaction`; migrations do the same (migrations/env.py).
"""

from __future__ import annotations

import logging

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

# How long a writer waits for another's lock: SQLite's busy timeout ("database is locked"), and
# PostgreSQL's lock_timeout (SQLSTATE 55P03: a row lock, an advisory lock, a table lock of a
# migration). Both are retried whole where the work allows it (mailbot.db.write_retry).
BUSY_TIMEOUT_SECONDS = 30


# PostgreSQL: every call has a deadline. The connect gives up after CONNECT_TIMEOUT seconds, and
# tcp_user_timeout drops a connection whose peer stopped acknowledging (a dead server or network)
# instead of waiting for the kernel's 15 minutes; a lock held by another session is waited for
# `busy_timeout` at most (lock_timeout); a long but healthy query is not cut short.
CONNECT_TIMEOUT_SECONDS = 10
TCP_USER_TIMEOUT_MS = 60_000


def make_engine(url: str, password: str | None = None, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> Engine:
    """An engine for a SQLite or PostgreSQL (psycopg 3) URL; `password` is added to the URL here,
    from the credential the config names, so it is never written in the config."""
    if url.startswith("sqlite:///"):
        engine = create_engine(url, connect_args={"timeout": busy_timeout})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # WAL: readers (status, the CLI) never block the daemon. FULL: a commit is on disk when
            # it returns, so what was reported (a receipt queued, a message moved to the processed
            # folder, an email recorded as sent) survives an OS crash or power cut too, not only a
            # crash of the process; it costs one fsync of the WAL per commit (a commit group, not a
            # message).
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    full = make_url(url)
    if password:
        full = full.set(password=password)
    return create_engine(full, pool_pre_ping=True, connect_args={
        "connect_timeout": CONNECT_TIMEOUT_SECONDS, "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
        "application_name": "mailbot", "options": f"-c lock_timeout={round(busy_timeout * 1000)}"})


def engine_for(config) -> Engine:
    """The engine for a mailbot Config (its URL, and the password from its credential)."""
    password = config.database_password() if config.database_backend == "postgresql" else None
    return make_engine(config.database_url, password)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
