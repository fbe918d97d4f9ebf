"""Run the Alembic migrations shipped inside the package (mailbot.migrations)."""

from __future__ import annotations

import logging
from importlib import resources

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)


# Alembic is imported only when a migration runs: most commands just check HEAD.

def alembic_config(engine: Engine):
    from alembic.config import Config as AlembicConfig
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(resources.files("mailbot.migrations")))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision(engine: Engine) -> str | None:
    from alembic.script import ScriptDirectory
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command
    command.upgrade(alembic_config(engine), revision)


# The newest migration in migrations/versions (tests/test_migrations.py keeps this true). Knowing
# it saves every command from loading Alembic just to learn the schema is current.
HEAD = "0003"


def stored_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade_if_needed(engine: Engine) -> None:
    if stored_revision(engine) != HEAD:
        log.info("upgrading the database schema to %s", head_revision(engine))
        upgrade(engine)
