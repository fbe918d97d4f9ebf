"""One migrated database per test session, copied for each test's state directory.

Running the Alembic migrations for every test costs an Alembic import and a schema build each
time; a copy of a database migrated once by the real migrations is the same database, except that
whatever a migration makes at random (the installation id in Message-IDs) is the same in every
copy. Tests of the migrations themselves, of a first command on an empty state directory, or of a
database made anew start without it (write_config(..., database_ready=False)).

Two backends (pytest --database=sqlite|postgresql, see conftest.py): SQLite, a file in the state
directory that config.database_url points at by default; or PostgreSQL, the session's private
server (support.postgres), one database per state directory cloned from a migrated template, named
in the config by `config_keys()`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

DATABASE_NAME = "mailbot.sqlite3"  # what config.database_url defaults to under state_dir

_directory: Path | None = None
_template: Path | None = None
_postgres = None  # support.postgres.Postgres while the session runs on PostgreSQL


def use_directory(directory: Path) -> None:
    """Where the template is made (a session-scoped pytest directory; see conftest.py)."""
    global _directory, _template
    _directory, _template = directory, None


def use_postgres(server) -> None:
    """Run this session's databases on `server` (a support.postgres.Postgres): its template is
    migrated now."""
    global _postgres
    from mailbot.db.engine import make_engine
    from mailbot.db.migrate import upgrade
    from support.postgres import TEMPLATE
    server.sql(f'CREATE DATABASE "{TEMPLATE}" OWNER mailbot')
    engine = make_engine(server.url(TEMPLATE), server.password_file.read_text().strip())
    try:
        upgrade(engine)
    finally:
        engine.dispose()  # CREATE DATABASE ... TEMPLATE needs the template without connections
    _postgres = server


def backend() -> str:
    return "postgresql" if _postgres is not None else "sqlite"


def template() -> Path:
    """The migrated SQLite template, made on first use."""
    global _template
    if _template is None:
        from mailbot.db.engine import make_engine
        from mailbot.db.migrate import upgrade

        directory = _directory or Path(tempfile.mkdtemp(prefix="mailbot-template-"))
        path = directory / DATABASE_NAME
        engine = make_engine(f"sqlite:///{path}")
        try:
            upgrade(engine)
        finally:
            engine.dispose()  # the last connection checkpoints the WAL into the file
        _template = path
    return _template


def seed(state_dir: Path) -> Path | str:
    """A copy of the template as state_dir's database: the SQLite file where config.database_url
    points by default, or (PostgreSQL) the database config_keys(state_dir) names."""
    if _postgres is not None:
        from support.postgres import database_name
        return _postgres.new_database(database_name(state_dir))
    state_dir.mkdir(parents=True, exist_ok=True)
    target = state_dir / DATABASE_NAME
    shutil.copyfile(template(), target)
    return target


def prepare(state_dir: Path, ready: bool) -> None:
    """What write_config does: seed the migrated copy, or (ready=False) leave the state directory
    without a schema, as a first start finds it. A PostgreSQL database is kept while its state
    directory exists (copied by copy(), or left by an earlier write_config), as a SQLite file in
    the directory would be; once the directory is gone, so is the database."""
    if ready:
        seed(state_dir)
    elif _postgres is not None:
        from support.postgres import EMPTY, database_name
        if not _postgres.exists(database_name(state_dir)) or not state_dir.exists():
            _postgres.new_database(database_name(state_dir), template=EMPTY)


def copy(source_state: Path, target_state: Path) -> None:
    """A copy of source_state's database for target_state (the state directories themselves are
    copied by the caller; under SQLite that copied the file already)."""
    if _postgres is not None:
        from support.postgres import database_name
        _postgres.new_database(database_name(target_state), template=database_name(source_state))


def config_keys(state_dir: Path) -> dict[str, str]:
    """The [general] keys that point a config at state_dir's database ({} for SQLite's default)."""
    if _postgres is None:
        return {}
    from support.postgres import database_name
    return {"database_url": _postgres.url(database_name(state_dir)),
            "database_password_file": str(_postgres.password_file)}
