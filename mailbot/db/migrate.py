"""Run the Alembic migrations shipped inside the package (mailbot.migrations).

The schema changes in exactly two places, both documented in README's command table:
`mailbot db upgrade`, and `prepare_database`, the first use by any other command (a new state
directory gets its database; a database left by an older version is upgraded, as after
`pip install` of a new release and `systemctl restart`). Both log what they did.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from importlib import resources
from pathlib import Path
from typing import Iterator

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from mailbot.config import Config
from mailbot.db.engine import engine_for
from mailbot.errors import MailbotError

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
HEAD = "0010"


def stored_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade_if_needed(engine: Engine) -> None:
    stored = stored_revision(engine)
    if stored == HEAD:
        return
    if stored is None:
        log.info("creating the database schema (revision %s)", head_revision(engine))
    else:
        log.info("upgrading the database schema from revision %s to %s", stored, head_revision(engine))
    upgrade(engine)


def make_state_dir(config: Config) -> None:
    """The state directory, and the SQLite file's folder if the database lives elsewhere."""
    config.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # mail and figures: the operator's only
    if config.database_url.startswith("sqlite:///"):
        Path(config.database_url[len("sqlite:///"):]).parent.mkdir(mode=0o700, parents=True, exist_ok=True)


# How long a first start waits for another process that is creating or upgrading the schema.
SCHEMA_LOCK_SECONDS = 300.0
SCHEMA_LOCK_FILE = ".schema.lock"


@contextlib.contextmanager
def schema_lock(config: Config, within: float = SCHEMA_LOCK_SECONDS) -> Iterator[None]:
    """One process at a time creates or upgrades the schema: two first starts on a fresh state dir
    (the daemon and a CLI command) would otherwise both open the new file and race for its first
    write (issue 11). A file lock in state_dir, waited for within a bound; the kernel drops it when
    its holder dies, so a kill never leaves it behind."""
    path = config.state_dir / SCHEMA_LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        give_up = time.monotonic() + within
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= give_up:
                    raise MailbotError(f"another mailbot process has been creating or upgrading the database "
                                       f"for over {within:.0f} s (lock {path})") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # releases the lock


def schema_current(config: Config) -> bool:
    """Whether the database exists at the current schema: one read, Alembic not imported."""
    url = config.database_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        return False
    engine = engine_for(config)
    try:
        return stored_revision(engine) == HEAD
    finally:
        engine.dispose()


def prepare_database(config: Config) -> Engine:
    """The engine for this config, ready to use: the state directory is created if missing and the
    schema brought to the current revision (the first-use path; see the module docstring). When
    the schema is current this is one read; otherwise it is made under `schema_lock`."""
    make_state_dir(config)
    engine = engine_for(config)
    url = config.database_url
    database_file = Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None
    if (database_file is None or database_file.exists()) and stored_revision(engine) == HEAD:
        return engine
    with schema_lock(config):
        upgrade_if_needed(engine)  # looks again: the process we waited for may have done it
    return engine
