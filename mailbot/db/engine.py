"""Engines and sessions. Nothing connects at import time, and nothing here creates a file, a folder
or a table: the state directory and the schema are made in mailbot.db.migrate.prepare_database.

SQLite transactions are begun by us, not by pysqlite (which begins only before DML, so DDL ran
outside any transaction, and deferred, so a transaction that had read and then wanted to write
failed at once with "database is locked" when another process had written meanwhile: issue 11).
A writing transaction starts with `BEGIN IMMEDIATE`: it takes the write lock up front, waiting up
to the busy timeout for it, and can then never fail half-way for a lock. Sessions that only read
(`make_sessionmaker(engine, read_only=True)`) begin deferred, so they never wait for a writer.
"""

from __future__ import annotations

import logging

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

BUSY_TIMEOUT_SECONDS = 30  # how long a writer waits for another's lock before "database is locked"
_READ_ONLY = "mailbot_read_only"


def make_engine(url: str, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> Engine:
    if url.startswith("sqlite:///"):
        engine = create_engine(url, connect_args={"timeout": busy_timeout})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # pysqlite begins nothing; "begin" below does
            # WAL: readers (status, the CLI) never block the daemon; NORMAL sync is durable in WAL
            # mode across process crashes (only an OS crash may lose the last commits).
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            read_only = conn.get_execution_options().get(_READ_ONLY, False)
            conn.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


def make_sessionmaker(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions on this engine; `read_only` ones never take the write lock (status, reports)."""
    bind = engine.execution_options(**{_READ_ONLY: True}) if read_only else engine
    return sessionmaker(bind, expire_on_commit=False)
