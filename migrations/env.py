"""Alembic environment. The URL comes from mailbot's own config loader (or the engine mailbot
passes in), never from alembic.ini."""

from __future__ import annotations

import os

from alembic import context

from mailbot.db.models import Base

config = context.config
target_metadata = Base.metadata


def _engine():
    engine = config.attributes.get("engine")
    if engine is not None:
        return engine
    # Run by the `alembic` command directly: read the URL through mailbot's config loader.
    from mailbot.config import load_config
    from mailbot.db.engine import engine_for
    from mailbot.db.migrate import make_state_dir
    mailbot_config = load_config(os.environ.get("MAILBOT_CONFIG"))
    make_state_dir(mailbot_config)
    return engine_for(mailbot_config)


def run_migrations_offline() -> None:
    context.configure(url=_engine().url, target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    with _engine().connect() as connection:
        if connection.dialect.name == "sqlite":
            # pysqlite runs DDL outside any transaction, so a kill in the middle of the first
            # start left tables without a version row (issue 11). One explicit transaction makes
            # the whole upgrade atomic; IMMEDIATE takes the write lock first, so a second process
            # waits here (busy timeout) and then finds the version already at head. mailbot's
            # engine begins so itself (mailbot.db.engine); another engine gets it here.
            connection.begin()
            if not connection.connection.dbapi_connection.in_transaction:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif connection.dialect.name == "postgresql":
            # Two instances starting at once on one database: the second waits here until the
            # first has committed, and then finds the version already at head.
            connection.begin()
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(4242014)")
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                          transactional_ddl=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
