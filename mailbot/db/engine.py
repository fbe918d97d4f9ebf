"""Engines and sessions. Nothing connects at import time."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from mailbot.config import Config

log = logging.getLogger(__name__)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # WAL: readers (status, the CLI) never block the daemon; NORMAL sync is durable in WAL
            # mode across process crashes (only an OS crash may lose the last commits).
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def open_database(config: Config, upgrade: bool = True) -> Engine:
    """The engine for this config; a new or old database is upgraded to the current schema so a
    newcomer needs no extra step."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(config.database_url)
    if upgrade:
        from mailbot.db.migrate import upgrade_if_needed
        upgrade_if_needed(engine)
    return engine
